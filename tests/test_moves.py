"""Moves between grids (issue 17, finding 1): an upsert from another grid never takes a
record, nor shows it, until the grid the record is in agrees; a record in another grid
is, to a submission, as if missing (finding 2: no existence or version oracle)."""
import pytest
from conftest import (GRID_CODE, GRID_FAR, GRID_OTHER, derived_tables, id_number, item, person,
                      send_and_confirm)

from gridcollect import ids, store, workflow

API = "/api/v1"
KEY = id_number(1)
SECRET_PERSON = person(1, phone="13907171234", special_groups=["独居老人"])
# what someone who knows only the ID number sends: the rest made up (sex and birth date
# follow from the number)
TAKEOVER = person(1, name="冒名", phone="13600000000")


def credit_code(body="MA4K3L5P") -> str:
    """A unified social credit code (GB 32100) with both its check characters."""
    code = "91420502" + body + ids.org_code_check_character(body)
    return code + ids.uscc_check_character(code + "0")


@pytest.fixture
def owned(login):
    """A person confirmed in GRID_CODE (w3, sup), with a phone and a secret field."""
    send_and_confirm(login, "home", SECRET_PERSON)
    return KEY


def request_takeover(login, data=TAKEOVER, client_id="takeover", **more):
    """wfar (GRID_FAR) sends the upsert, its own supervisor confirms it."""
    sent = login("wfar").submit(item(client_id, data, grid_code=GRID_FAR, **more)).json
    [result] = sent["results"]
    assert result["status"] == "accepted", result
    review = login("supfar").post(f"{API}/submissions/{result['id']}/review",
                                  json={"action": "confirm"})
    assert review.status_code == 200, review.json
    return result["id"], review.json


def test_an_upsert_of_another_grids_record_waits_and_shows_nothing(login, owned, db):
    before = store.get_record(db, "person", KEY)
    sid, reviewed = request_takeover(login)
    # the receiving reviewer is told that it would move a record, and nothing of it
    assert reviewed["state"] == "awaiting_move" and reviewed["conflict"] is None
    assert reviewed["data"] == TAKEOVER  # what its own worker sent, nothing merged in
    for who in ("wfar", "supfar"):
        assert login(who).get(f"{API}/records/person/{KEY}").status_code == 404
        assert login(who).get(f"{API}/records/person").json["items"] == []
        assert login(who).get(f"{API}/submissions/{sid}").json["conflict"] is None
    # the owning grid keeps it, unchanged
    assert store.get_record(db, "person", KEY) == before
    for who in ("w3", "sup"):
        body = login(who).get(f"{API}/records/person/{KEY}").json
        assert body["grid_code"] == GRID_CODE and body["data"] == SECRET_PERSON
        assert len(body["history"]) == 1


def test_the_owning_grid_refuses_and_the_record_stays(login, owned, db):
    sid, _ = request_takeover(login)
    sup = login("sup")
    [move] = sup.get(f"{API}/moves").json["items"]
    assert move == {**move, "id": sid, "record_type": "person", "key": KEY,
                    "from_grid": GRID_CODE, "to_grid": GRID_FAR, "worker": "wfar",
                    "requested_by": "supfar", "state": "open", "decided_by": None}
    assert "data" not in move  # the owning side decides on the move, not on the other's data
    assert login("supfar").get(f"{API}/moves").json["items"] == []
    no_note = sup.post(f"{API}/moves/{sid}", json={"action": "refuse"})
    assert no_note.status_code == 422 and no_note.json["error"] == "note_required"
    refused = sup.post(f"{API}/moves/{sid}", json={"action": "refuse", "note": "此人仍住本网格"})
    assert refused.status_code == 200
    assert (refused.json["state"], refused.json["decided_by"]) == ("refused", "sup")
    submission = login("wfar").get(f"{API}/submissions/{sid}").json
    assert submission["state"] == "rejected" and submission["review"]["note"] == "此人仍住本网格"
    # the other side is not told who refused, nor where the record is
    assert submission["review"]["by"] == workflow.REFUSED_BY
    assert "sup" not in str(submission) and GRID_CODE not in str(submission)
    record = store.get_record(db, "person", KEY)
    assert (record["grid_code"], record["version"], record["data"]) == (GRID_CODE, 1,
                                                                         SECRET_PERSON)
    again = sup.post(f"{API}/moves/{sid}", json={"action": "accept"})
    assert again.status_code == 409 and again.json["error"] == "move_decided"
    assert login("supfar").post(f"{API}/submissions/{sid}/review",
                                json={"action": "confirm"}).status_code == 409
    assert sup.get(f"{API}/moves").json["items"] == []


def test_the_owning_grid_accepts_and_the_record_moves(login, owned, db):
    sid, _ = request_takeover(login)
    accepted = login("sup").post(f"{API}/moves/{sid}", json={"action": "accept"})
    assert accepted.status_code == 200 and accepted.json["state"] == "accepted"
    # the decided request keeps the grid it was decided for: its decider still reads it
    assert accepted.json["from_grid"] == GRID_CODE
    assert login("sup").get(f"{API}/moves/{sid}").json["state"] == "accepted"
    assert login("supfar").get(f"{API}/moves/{sid}").status_code == 404
    submission = login("wfar").get(f"{API}/submissions/{sid}").json
    assert submission["state"] == "confirmed" and submission["review"]["by"] == "supfar"
    body = login("wfar").get(f"{API}/records/person/{KEY}").json
    assert body["grid_code"] == GRID_FAR and body["version"] == 2
    assert body["data"] == {**SECRET_PERSON, **TAKEOVER}
    assert body["history"][-1]["moved_from"] == GRID_CODE
    assert body["history"][-1]["confirmed_by"] == "supfar"
    assert login("w3").get(f"{API}/records/person/{KEY}").status_code == 404
    actions = [e["action"] for e in login("admin").get(
        f"{API}/audit?object_id={sid}").json["items"]]
    assert actions[:2] == ["move_accept", "review"]
    live = derived_tables(db)
    workflow.rebuild(db)
    assert derived_tables(db) == live


def test_rejecting_or_returning_it_withdraws_the_request(login, owned):
    sid, _ = request_takeover(login)
    returned = login("supfar").post(f"{API}/submissions/{sid}/review",
                                    json={"action": "return", "note": "身份证号请再核对"})
    assert returned.status_code == 200 and returned.json["state"] == "returned"
    assert login("sup").get(f"{API}/moves").json["items"] == []
    move = login("sup").get(f"{API}/moves/{sid}").json
    assert (move["state"], move["decided_by"]) == ("withdrawn", "supfar")
    late = login("sup").post(f"{API}/moves/{sid}", json={"action": "accept"})
    assert late.status_code == 409


def test_a_reviewer_over_both_grids_moves_it_at_once(login, owned, db):
    """Agreement is scope over the record's grid: the admin, or a common supervisor."""
    sent = login("wfar").submit(item("by-admin", TAKEOVER, grid_code=GRID_FAR)).json
    sid = sent["results"][0]["id"]
    reviewed = login("admin").post(f"{API}/submissions/{sid}/review",
                                   json={"action": "confirm"})
    assert reviewed.json["state"] == "confirmed"
    assert store.get_record(db, "person", KEY)["grid_code"] == GRID_FAR
    assert db.execute("SELECT count(*) FROM moves").fetchone()[0] == 0


def test_a_bulk_confirm_answers_awaiting_move(login, owned):
    other = login("wfar").submit(item("new", person(2), grid_code=GRID_FAR)).json
    [first, second] = [request_takeover_id(login), other["results"][0]["id"]]
    results = login("supfar").post(f"{API}/reviews", json={
        "ids": [first, second], "action": "confirm"}).json["results"]
    assert [r["state"] for r in results] == ["awaiting_move", "confirmed"]


def request_takeover_id(login):
    return login("wfar").submit(item("bulk", TAKEOVER, grid_code=GRID_FAR)).json[
        "results"][0]["id"]


def test_an_open_request_follows_its_record(login, db):
    """The request waits for whichever grid the record is in when it is decided."""
    send_and_confirm(login, "far", person(1), worker="wfar", grid_code=GRID_FAR,
                     supervisor="supfar")
    to_code = login("w3").submit(item("to-code", person(1))).json["results"][0]["id"]
    to_other = login("w4").submit(item("to-other", person(1), grid_code=GRID_OTHER)).json[
        "results"][0]["id"]
    for sid in (to_code, to_other):
        assert login("sup").post(f"{API}/submissions/{sid}/review",
                                 json={"action": "confirm"}).json["state"] == "awaiting_move"
    assert {m["id"] for m in login("supfar").get(f"{API}/moves").json["items"]} == {
        to_code, to_other}
    login("supfar").post(f"{API}/moves/{to_other}", json={"action": "accept"})
    assert store.get_record(db, "person", KEY)["grid_code"] == GRID_OTHER
    # now in sup's community: the other request is sup's to decide
    assert login("supfar").get(f"{API}/moves").json["items"] == []
    [move] = login("sup").get(f"{API}/moves").json["items"]
    assert (move["id"], move["from_grid"]) == (to_code, GRID_OTHER)
    assert login("sup").post(f"{API}/moves/{to_code}",
                             json={"action": "accept"}).status_code == 200
    assert store.get_record(db, "person", KEY)["grid_code"] == GRID_CODE


def test_an_organisation_is_not_taken_either(login, db):
    code = credit_code()
    org = {"uscc": code, "name": "宜昌某某商贸有限公司", "address": "西陵区某路 8 号",
           "phone": "13907170000", "legal_rep_name": "李四"}
    send_and_confirm(login, "org", org, record_type="organization")
    sent = login("wfar").submit(item("org-take", {"uscc": code, "name": "冒名公司",
                                                  "address": "某地"},
                                     record_type="organization", grid_code=GRID_FAR)).json
    sid = sent["results"][0]["id"]
    state = login("supfar").post(f"{API}/submissions/{sid}/review",
                                 json={"action": "confirm"}).json["state"]
    assert state == "awaiting_move"
    assert login("wfar").get(f"{API}/records/organization/{code}").status_code == 404
    assert store.get_record(db, "organization", code)["data"] == org


@pytest.mark.parametrize("base", [1, 2, 7])
def test_a_stale_base_version_says_nothing_of_another_grids_record(login, owned, base):
    """Out of scope answers exactly like missing: the conflict is the same for a key
    that lives in another grid and for one that exists nowhere."""
    def conflict(data, client_id):
        sid, reviewed = request_takeover(login, data, client_id, base_version=base)
        assert reviewed["state"] == "conflict"
        return reviewed["conflict"]

    elsewhere = conflict(TAKEOVER, f"elsewhere-{base}")
    nowhere = conflict(person(77), f"nowhere-{base}")
    assert elsewhere == nowhere == {"reason": "stale_base_version", "version": 0}


def test_a_retire_of_another_grids_record_finds_nothing(login, owned, db):
    sent = login("wfar").submit(item("retire", {"id_number": KEY}, grid_code=GRID_FAR,
                                     action="retire")).json
    sid = sent["results"][0]["id"]
    reviewed = login("supfar").post(f"{API}/submissions/{sid}/review",
                                    json={"action": "confirm"}).json
    assert reviewed["conflict"] == {"reason": "no_record", "version": 0}
    assert not store.get_record(db, "person", KEY)["retired"]


def test_the_monitor_counts_entries_awaiting_a_move(login, owned, db):
    sid, _ = request_takeover(login)
    far = login("supfar").get(f"{API}/monitor/grids").json["items"][0]
    assert (far["code"], far["awaiting_move"], far["confirmed"]) == (GRID_FAR, 1, 0)
    live = derived_tables(db)
    store.recount_monitor(db)
    assert derived_tables(db) == live
    login("sup").post(f"{API}/moves/{sid}", json={"action": "accept"})
    far = login("supfar").get(f"{API}/monitor/grids").json["items"][0]
    assert (far["awaiting_move"], far["confirmed"], far["records"]) == (0, 1, {"person": 1})
    live = derived_tables(db)
    workflow.rebuild(db)
    assert derived_tables(db) == live
