"""Confirm: single and bulk review, notes, 409, returned entries and their corrections."""
import pytest

from conftest import GRID_FAR, GRID_OTHER, item, person


def submit(login, *items, worker="w3"):
    results = login(worker).submit(*items).json["results"]
    assert {r["status"] for r in results} == {"accepted"}, results
    return [r["id"] for r in results]


def returned(login) -> int:
    """w3's person(1), returned by the supervisor with a note: its id."""
    [sid] = submit(login, item("a", person(1)))
    login("sup").post(f"/api/v1/submissions/{sid}/review",
                      json={"action": "return", "note": "请核实电话"})
    return sid


@pytest.mark.parametrize("action, state", [("confirm", "confirmed"), ("reject", "rejected"),
                                           ("return", "returned")])
def test_review_moves_a_pending_submission_once(login, action, state):
    [sid] = submit(login, item("a"))
    sup = login("sup")
    response = sup.post(f"/api/v1/submissions/{sid}/review",
                        json={"action": action, "note": "核实无误" if action == "confirm"
                              else "请补充联系电话"})
    assert response.status_code == 200, response.json
    assert response.json["state"] == state
    assert response.json["review"]["by"] == "sup"
    again = sup.post(f"/api/v1/submissions/{sid}/review", json={"action": "confirm"})
    assert again.status_code == 409
    assert again.json["error"] == "not_pending" and state in again.json["message"]


@pytest.mark.parametrize("note", [None, "", "   "])
@pytest.mark.parametrize("action", ["reject", "return"])
def test_reject_and_return_need_a_note(login, action, note):
    [sid] = submit(login, item("a"))
    response = login("sup").post(f"/api/v1/submissions/{sid}/review",
                                 json={"action": action, "note": note})
    assert response.status_code == 422 and response.json["error"] == "note_required"
    assert login("sup").get(f"/api/v1/submissions/{sid}").json["state"] == "pending"


def test_a_returned_entry_shows_its_note_and_links_to_its_correction(login):
    [sid] = submit(login, item("a", person(1)))
    login("sup").post(f"/api/v1/submissions/{sid}/review",
                      json={"action": "return", "note": "联系电话有误，请核实"})
    w3 = login("w3")
    returned = w3.get("/api/v1/submissions?state=returned").json["items"]
    assert [(s["id"], s["review"]["note"]) for s in returned] == [(sid, "联系电话有误，请核实")]
    # the phone resends the record (same natural key) without naming what it replaces
    [fixed] = submit(login, item("a-2", person(1, phone="13912345678")))
    correction = w3.get(f"/api/v1/submissions/{fixed}").json
    assert correction["replaces"] == sid
    assert w3.get(f"/api/v1/submissions/{sid}").json["replaced_by"] == fixed
    assert w3.get(f"/api/v1/submissions/{sid}").json["state"] == "returned"
    confirmed = login("sup").post(f"/api/v1/submissions/{fixed}/review",
                                  json={"action": "confirm"})
    assert confirmed.json["state"] == "confirmed"


def test_explicit_replaces_must_be_own_returned_uncorrected(login):
    event = {"event_type": "01", "description": "邻里噪音纠纷需要调解",
             "occurred_at": "2026-11-20T09:30:00+08:00",
             "location": {"lat": 30.70, "lon": 111.29}}
    [sid] = submit(login, item("e", event, "event"))
    w3 = login("w3")
    early = w3.submit(item("e-2", event, "event", replaces=sid)).json["results"][0]
    assert early["status"] == "invalid" and early["errors"][0]["code"] == "not_replaceable"
    login("sup").post(f"/api/v1/submissions/{sid}/review",
                      json={"action": "return", "note": "请补充事件经过"})
    fixed = w3.submit(item("e-3", {**event, "description": "邻里噪音纠纷，已上门调解"}, "event",
                           replaces=sid)).json["results"][0]
    assert fixed["status"] == "accepted"
    twice = w3.submit(item("e-4", event, "event", replaces=sid)).json["results"][0]
    assert twice["status"] == "invalid"
    other = login("w4").submit(item("e-5", {**event, "location": {"lat": 30.68, "lon": 111.29}},
                                    "event", grid_code=GRID_OTHER, replaces=sid))
    assert other.json["results"][0]["status"] == "invalid"


def test_bulk_review_answers_per_id(login):
    ids = submit(login, *[item(f"b{i}", person(i)) for i in range(3)])
    [far] = submit(login, item("f", grid_code=GRID_FAR), worker="wfar")
    sup = login("sup")
    sup.post(f"/api/v1/submissions/{ids[0]}/review", json={"action": "confirm"})
    response = sup.post("/api/v1/reviews", json={"ids": [*ids, far, 99999],
                                                  "action": "confirm"})
    assert response.status_code == 200
    assert response.json["results"] == [
        {"id": ids[0], "status": "not_pending", "state": "confirmed"},
        {"id": ids[1], "status": "reviewed", "state": "confirmed"},
        {"id": ids[2], "status": "reviewed", "state": "confirmed"},
        {"id": far, "status": "not_found", "state": None},
        {"id": 99999, "status": "not_found", "state": None},
    ]
    assert login("supfar").get(f"/api/v1/submissions/{far}").json["state"] == "pending"


def test_bulk_return_needs_a_note_and_changes_nothing_without(login):
    ids = submit(login, *[item(f"b{i}", person(i)) for i in range(2)])
    response = login("sup").post("/api/v1/reviews", json={"ids": ids, "action": "return"})
    assert response.status_code == 422
    assert {s["state"] for s in login("sup").get("/api/v1/submissions").json["items"]} == {
        "pending"}


def test_reviews_are_audited_with_their_note(login):
    [sid] = submit(login, item("a"))
    login("sup").post(f"/api/v1/submissions/{sid}/review",
                      json={"action": "reject", "note": "重复登记"})
    entries = login("admin").get(f"/api/v1/audit?object_id={sid}&action=review").json["items"]
    assert [(e["actor"], e["detail"]) for e in entries] == [
        ("sup", {"action": "reject", "note": "重复登记"})]


def test_a_supervisor_with_300_entries_pages_through_them(login):
    submit(login, *[item(f"m{i}", person(i)) for i in range(300)])
    sup = login("sup")
    seen, cursor = [], None
    while True:
        page = sup.get("/api/v1/submissions?state=pending&limit=100"
                       + (f"&cursor={cursor}" if cursor else "")).json
        seen += [s["id"] for s in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert len(seen) == 300 and seen == sorted(seen, reverse=True)
    response = sup.post("/api/v1/reviews", json={"ids": seen[:250], "action": "confirm"})
    assert [r["status"] for r in response.json["results"]] == ["reviewed"] * 250


def test_two_corrections_in_one_batch_link_only_the_first(login, db):
    sid = returned(login)
    w3 = login("w3")
    response = w3.submit(item("x", person(2)), item("fix-e", person(1, phone="13912345678")),
                         item("fix-f", person(1, phone="13912345679")))
    assert response.status_code == 200
    assert [r["status"] for r in response.json["results"]] == ["accepted"] * 3
    _, first, second = (w3.get(f"/api/v1/submissions/{r['id']}").json
                        for r in response.json["results"])
    assert (first["replaces"], second["replaces"]) == (sid, None)
    explicit = w3.submit(item("g1", person(3)), item("g2", person(1), replaces=sid))
    assert [(r["status"], [e["code"] for e in r["errors"]])
            for r in explicit.json["results"]] == [("accepted", []),
                                                    ("invalid", ["not_replaceable"])]


def test_two_explicit_corrections_in_one_batch(login):
    sid = returned(login)
    response = login("w3").submit(item("g1", person(1), replaces=sid),
                                  item("g2", person(1), replaces=sid))
    assert [(r["status"], [e["code"] for e in r["errors"]])
            for r in response.json["results"]] == [("accepted", []),
                                                    ("invalid", ["not_replaceable"])]


def test_a_worker_still_lists_its_own_after_a_scope_change(login):
    sid = returned(login)
    moved = login("admin").patch("/api/v1/users/w3", json={"scope": [GRID_OTHER]})
    assert moved.status_code == 200
    w3 = login("w3")
    assert [s["id"] for s in w3.get("/api/v1/submissions?state=returned").json["items"]] == [sid]
    assert w3.get(f"/api/v1/submissions/{sid}").status_code == 200
