"""Merge on confirm (SPEC.md section 6): master records, versions, history, conflicts,
retire, moves between grids, events, and rebuild-equals-live."""
import json

import pytest
from click.testing import CliRunner
from conftest import GRID_CODE, GRID_OTHER, derived_tables, event, id_number, item, person

from gridcollect import store, workflow

KEY = id_number(1)


@pytest.fixture
def w3(login):
    return login("w3")


@pytest.fixture
def sup(login):
    return login("sup")


def send(caller, client_id, data=None, **more):
    result = caller.submit(item(client_id, data, **more)).json["results"][0]
    assert result["status"] == "accepted", result
    return result["id"]


def confirm(sup, sid, force=False):
    body = {"action": "confirm", **({"force": True} if force else {})}
    response = sup.post(f"/api/v1/submissions/{sid}/review", json=body)
    assert response.status_code == 200, response.json
    return response.json


def record(caller, key=KEY, record_type="person"):
    return caller.get(f"/api/v1/records/{record_type}/{key}")


def test_confirming_creates_the_master_record_with_its_history(w3, sup):
    sid = send(w3, "a")
    reviewed = confirm(sup, sid)
    assert reviewed["state"] == "confirmed" and reviewed["conflict"] is None
    response = record(sup)
    assert response.status_code == 200
    body = response.json
    assert (body["record_type"], body["key"], body["grid_code"], body["version"],
            body["retired"]) == ("person", KEY, GRID_CODE, 1, False)
    assert body["data"] == person()
    [entry] = body["history"]
    assert entry["action"] == "create" and entry["submission_id"] == sid
    assert entry["confirmed_by"] == "sup" and entry["worker"] == "w3"
    assert entry["confirmed_at"] == reviewed["review"]["at"] == body["updated_at"]
    assert entry["changes"]["name"] == [None, "张伟"]
    assert body["provenance"]["name"]["submission_id"] == sid


def test_a_later_upsert_replaces_the_fields_it_carries_and_keeps_the_rest(w3, sup):
    first = send(w3, "a")
    confirm(sup, first)
    second = send(w3, "b", {"id_number": KEY, "name": "张伟", "sex": person()["sex"],
                            "birth_date": "1980-01-01", "ethnicity": "01",
                            "residence_type": "2", "phone": "13900001111"})
    confirm(sup, second)
    body = record(sup).json
    assert body["version"] == 2
    assert body["data"]["residence_type"] == "2" and body["data"]["phone"] == "13900001111"
    assert [h["version"] for h in body["history"]] == [1, 2]
    # only what changed is in the second entry; provenance names who set each value
    assert set(body["history"][1]["changes"]) == {"residence_type", "phone"}
    assert body["provenance"]["phone"]["submission_id"] == second
    assert body["provenance"]["name"]["submission_id"] == first


def test_fields_absent_from_a_submission_are_kept(w3, sup, db):
    confirm(sup, send(w3, "a", person(education="20")))
    confirm(sup, send(w3, "b"))  # no education field
    assert store.get_record(db, "person", KEY)["data"]["education"] == "20"


def test_a_stale_base_version_is_a_conflict_and_leaves_the_record_untouched(w3, sup, db):
    confirm(sup, send(w3, "a"))
    confirm(sup, send(w3, "b", person(residence_type="2"), base_version=1))  # now v2
    before = store.get_record(db, "person", KEY)
    stale = send(w3, "c", person(residence_type="4"), base_version=1)
    reviewed = confirm(sup, stale)
    assert reviewed["state"] == "conflict"
    assert reviewed["conflict"] == {"reason": "stale_base_version", "version": 2}
    assert store.get_record(db, "person", KEY) == before
    # listed for the supervisor to resolve
    listed = sup.get("/api/v1/submissions?state=conflict").json["items"]
    assert [s["id"] for s in listed] == [stale]


def test_a_supervisor_resolves_a_conflict_by_confirming_it_again(w3, sup, db):
    confirm(sup, send(w3, "a"))
    confirm(sup, send(w3, "b", person(residence_type="2")))
    stale = send(w3, "c", person(residence_type="4"), base_version=1)
    confirm(sup, stale)
    resolved = confirm(sup, stale, force=True)
    assert resolved["state"] == "confirmed"
    current = store.get_record(db, "person", KEY)
    assert current["version"] == 3 and current["data"]["residence_type"] == "4"
    again = sup.post(f"/api/v1/submissions/{stale}/review",
                     json={"action": "confirm", "force": True})
    assert again.status_code == 409 and again.json["error"] == "not_pending"


def test_a_supervisor_resolves_a_conflict_by_discarding_it(w3, sup, db):
    confirm(sup, send(w3, "a"))
    confirm(sup, send(w3, "b", person(residence_type="2")))
    stale = send(w3, "c", person(residence_type="4"), base_version=1)
    confirm(sup, stale)
    discarded = sup.post(f"/api/v1/submissions/{stale}/review",
                         json={"action": "reject", "note": "已有更新的登记"})
    assert discarded.json["state"] == "rejected"
    assert store.get_record(db, "person", KEY)["version"] == 2


def test_the_current_base_version_merges(w3, sup, db):
    confirm(sup, send(w3, "a"))
    confirm(sup, send(w3, "b", person(residence_type="2"), base_version=1))
    assert store.get_record(db, "person", KEY)["version"] == 2


def test_base_version_zero_means_a_new_record(w3, sup, db):
    assert confirm(sup, send(w3, "a", base_version=0))["state"] == "confirmed"
    assert confirm(sup, send(w3, "b", person(name="李四"), base_version=0))["state"] \
        == "conflict"


def test_retire_marks_the_record_retired_and_keeps_its_history(w3, sup, db):
    confirm(sup, send(w3, "a"))
    reviewed = confirm(sup, send(w3, "r", {"id_number": KEY}, action="retire"))
    assert reviewed["state"] == "confirmed"
    body = record(sup).json
    assert body["retired"] is True and body["version"] == 2
    assert body["data"] == person()  # the last values stay
    assert [h["action"] for h in body["history"]] == ["create", "retire"]
    listed = sup.get("/api/v1/records/person?retired=false").json["items"]
    assert listed == []
    # an upsert brings it back
    confirm(sup, send(w3, "b"))
    body = record(sup).json
    assert body["retired"] is False and body["history"][-1]["action"] == "restore"


@pytest.mark.parametrize("setup, reason", [
    ([], "no_record"),
    (["create", "retire"], "retired"),
])
def test_retiring_what_is_not_there_is_a_conflict(w3, sup, setup, reason):
    if "create" in setup:
        confirm(sup, send(w3, "a"))
    if "retire" in setup:
        confirm(sup, send(w3, "r1", {"id_number": KEY}, action="retire"))
    reviewed = confirm(sup, send(w3, "r2", {"id_number": KEY}, action="retire"))
    assert reviewed["state"] == "conflict" and reviewed["conflict"]["reason"] == reason
    # forced: an already retired record stays as it is; nothing is made to retire
    assert confirm(sup, reviewed["id"], force=True)["state"] == (
        "confirmed" if reason == "retired" else "conflict")


def test_only_its_own_grid_retires_a_record(w3, sup, login, db):
    confirm(sup, send(w3, "a"))
    w4 = login("w4")
    other = send(w4, "r", {"id_number": KEY}, action="retire", grid_code=GRID_OTHER)
    # answered as if there were no such person: it says nothing about other grids
    assert confirm(sup, other)["conflict"] == {"reason": "no_record", "version": 0}
    assert confirm(sup, other, force=True)["state"] == "conflict"  # never forced
    assert store.get_record(db, "person", KEY)["retired"] is False


def test_a_plain_confirm_never_forces_a_conflict(w3, sup, db):
    """A resent confirm (its answer lost) or the same id twice in a bulk confirm must
    not overwrite newer data: only "force" does."""
    confirm(sup, send(w3, "a"))
    confirm(sup, send(w3, "b", person(residence_type="2")))
    stale = send(w3, "c", person(residence_type="4"), base_version=1)
    confirm(sup, stale)
    again = sup.post(f"/api/v1/submissions/{stale}/review", json={"action": "confirm"})
    assert again.status_code == 409 and again.json["error"] == "needs_force"
    stale2 = send(w3, "d", person(residence_type="3"), base_version=1)
    bulk = sup.post("/api/v1/reviews", json={"ids": [stale2, stale2], "action": "confirm"})
    assert [r["status"] for r in bulk.json["results"]] == ["reviewed", "not_pending"]
    stale3 = send(w3, "e", person(residence_type="4"), base_version=1)
    forced = sup.post("/api/v1/reviews", json={"ids": [stale3, stale3], "action": "confirm",
                                               "force": True})
    assert [r["state"] for r in forced.json["results"]] == ["conflict", "conflict"]
    assert store.get_record(db, "person", KEY)["data"]["residence_type"] == "2"


def test_submissions_confirmed_before_merging_existed_become_records(tmp_path, monkeypatch):
    """An existing database (migrations 1 and 2) gets its master records on upgrade."""

    from gridcollect import clock
    path = tmp_path / "old.db"
    old = store.connect(path)
    monkeypatch.setattr(store.migrations, "MIGRATIONS", store.MIGRATIONS[:2])
    store.migrate(old, "2026-01-01T00:00:00.000+08:00")
    with store.write(old):  # as issue 3's store wrote them: no monitoring figures yet
        old["submissions"].insert_all([dict(zip(store.SUBMISSION_COLUMNS, [
            "w3", f"c{i}", "person", "420502001002003", "upsert", KEY,
            json.dumps(person(residence_type=str(i + 1))), "confirmed",
            "2026-11-20T10:00:00.000+08:00", "2026-11-20T10:00:00.000+08:00", "2026.1", None,
            None])) for i in range(2)])
        old.execute("UPDATE submissions SET review_by = 'sup', review_at = ? || id",
                    ["2026-11-20T11:00:00.00"])
    monkeypatch.undo()
    assert workflow.migrate(old, clock.iso(clock.now())) == [3, 4, 5, 6, 7]
    record = store.get_record(old, "person", KEY)
    assert record["version"] == 2 and record["data"]["residence_type"] == "2"
    assert old.execute("SELECT confirmed FROM monitor_areas WHERE area = ''").fetchone() == (2,)



def test_a_person_moves_to_another_grid_by_an_upsert_from_there(w3, sup, login, db):
    confirm(sup, send(w3, "a"))
    w4 = login("w4")
    confirm(sup, send(w4, "m", person(), grid_code=GRID_OTHER))
    body = record(sup).json
    assert body["grid_code"] == GRID_OTHER and body["version"] == 2
    assert body["history"][-1]["moved_from"] == GRID_CODE
    # one grid at a time: the old grid's worker no longer sees it, the new one does
    assert record(w3).status_code == 404
    assert record(w4).status_code == 200
    assert w3.get("/api/v1/records/person").json["items"] == []
    counts = {row["area"]: row["active"] for row in db.query(
        "SELECT area, active FROM monitor_records WHERE record_type = 'person'")}
    assert GRID_CODE not in counts and counts[GRID_OTHER] == 1 and counts[""] == 1


def test_every_event_is_its_own_record(w3, sup, db):
    ids = [send(w3, f"e{i}", event(), record_type="event") for i in range(2)]
    for sid in ids:
        confirm(sup, sid)
    listed = sup.get("/api/v1/records/event").json["items"]
    assert sorted(r["key"] for r in listed) == sorted(str(i) for i in ids)
    assert all(r["version"] == 1 for r in listed)


def test_bulk_confirm_merges_in_request_order(w3, sup, db):
    a = send(w3, "a")
    b = send(w3, "b", person(residence_type="2"))
    response = sup.post("/api/v1/reviews", json={"ids": [b, a], "action": "confirm"})
    assert [r["state"] for r in response.json["results"]] == ["confirmed", "confirmed"]
    current = store.get_record(db, "person", KEY)
    assert current["version"] == 2 and current["data"]["residence_type"] == "1"


def test_a_failed_merge_leaves_the_review_undone(w3, sup, db, monkeypatch):
    sid = send(w3, "a")

    def broken(db, entry):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "add_history", broken)
    response = sup.post(f"/api/v1/submissions/{sid}/review", json={"action": "confirm"})
    assert response.status_code == 500
    assert store.get_submission(db, sid)["state"] == "pending"
    assert store.get_record(db, "person", KEY) is None


def test_merges_are_audited(w3, sup, login):
    sid = send(w3, "a")
    confirm(sup, sid)
    [entry] = login("admin").get(f"/api/v1/audit?object_id={sid}&action=review").json["items"]
    assert entry["actor"] == "sup"
    assert entry["detail"]["merged"] == {"record_type": "person", "version": 1}


def _busy_day(w3, sup, login):
    """Creates, updates, conflicts (resolved both ways), retires, restores, moves,
    events, invalid attempts, returns and rejections."""
    w4 = login("w4")
    confirm(sup, send(w3, "a"))
    confirm(sup, send(w3, "b", person(residence_type="2"), base_version=1))
    stale = send(w3, "c", person(residence_type="4"), base_version=1)
    confirm(sup, stale)
    confirm(sup, stale, force=True)
    stale2 = send(w3, "d", person(residence_type="3"), base_version=1)
    confirm(sup, stale2)
    sup.post(f"/api/v1/submissions/{stale2}/review", json={"action": "reject", "note": "旧"})
    confirm(sup, send(w3, "p2", person(2)))
    confirm(sup, send(w3, "r", {"id_number": id_number(2)}, action="retire"))
    confirm(sup, send(w3, "p2b", person(2, name="王五")))
    confirm(sup, send(w4, "m", person(), grid_code=GRID_OTHER))
    for i in range(3):
        confirm(sup, send(w3, f"e{i}", event(), record_type="event"))
    w3.submit(item("bad", person(id_number="420502198001010000")))
    sup.post(f"/api/v1/submissions/{send(w3, 'x', person(3))}/review",
             json={"action": "return", "note": "电话不对"})
    send(w3, "pending", person(4))
    pair = [send(w3, "q1", person(5)), send(w3, "q2", person(5, name="赵六"))]
    sup.post("/api/v1/reviews", json={"ids": pair, "action": "confirm"})


@pytest.mark.parametrize("batch", [1, 2000])  # a record changed across batches, or within
def test_rebuilt_tables_equal_the_live_ones(w3, sup, login, db, monkeypatch, batch):
    monkeypatch.setattr(workflow, "REBUILD_BATCH", batch)
    _busy_day(w3, sup, login)
    live = derived_tables(db)
    assert len(live["records"]) == 6 and len(live["record_history"]) == 12
    counts = workflow.rebuild(db)
    assert derived_tables(db) == live
    assert counts == {"person": {"active": 3, "retired": 0}, "event": {"active": 3, "retired": 0}}


def test_gridcollect_rebuild_from_the_command_line(w3, sup, login, db, app):
    from gridcollect.cli import main
    _busy_day(w3, sup, login)
    live = derived_tables(db)
    db.execute("DELETE FROM records")  # damaged derived data
    result = CliRunner().invoke(main, ["rebuild", "--db", app.config["DATABASE"]])
    assert result.exit_code == 0, result.output
    assert "person" in result.output
    assert derived_tables(db) == live
