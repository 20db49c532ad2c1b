"""Monitoring figures per grid and rolled up, against hand-computed values."""
import datetime

import pytest
from conftest import GRID_CODE, GRID_FAR, GRID_OTHER, derived_tables, id_number, person
from conftest import item as _item

from gridcollect import clock, store, workflow
from gridcollect.checks import CHINA

T0 = datetime.datetime(2026, 11, 21, 9, 0, tzinfo=CHINA)
COMMUNITY, STREET, DISTRICT = GRID_CODE[:12], GRID_CODE[:9], GRID_CODE[:6]


def item(*args, **more):
    """An item collected an hour before the clock these tests set (T0)."""
    return _item(*args, **{"collected_at": (T0 - datetime.timedelta(hours=1)).isoformat(),
                           **more})


@pytest.fixture
def at(monkeypatch):
    """``at(seconds)`` sets the server's clock to T0 + seconds."""
    def set_clock(seconds):
        monkeypatch.setattr(clock, "now", lambda: T0 + datetime.timedelta(seconds=seconds))
    return set_clock


@pytest.fixture
def day(login, at):
    """grid 003: 3 accepted at T0 (confirmed after 60 s, returned after 180 s, one
    pending), 2 invalid attempts; grid 004: one accepted at T0+10 s, confirmed after
    300 s; the far grid: nothing."""
    w3, w4, sup = login("w3"), login("w4"), login("sup")
    at(0)
    results = w3.submit(item("p1", person(1)), item("p2", person(2)), item("p3", person(3)),
                        item("bad1", person(4, id_number=id_number(4)[:-1] + "0")),
                        item("bad2", {**person(5, id_number=id_number(5)[:-1] + "0"),
                                      "name": None})).json["results"]
    p1, p2, p3 = (r["id"] for r in results[:3])
    assert [r["status"] for r in results] == ["accepted"] * 3 + ["invalid"] * 2
    at(10)
    p4 = w4.submit(item("p4", person(6), grid_code=GRID_OTHER)).json["results"][0]["id"]
    at(60)
    sup.post(f"/api/v1/submissions/{p1}/review", json={"action": "confirm"})
    at(180)
    sup.post(f"/api/v1/submissions/{p2}/review", json={"action": "return", "note": "核对"})
    at(310)
    sup.post(f"/api/v1/submissions/{p4}/review", json={"action": "confirm"})
    return {"p3": p3}


def iso(seconds):
    return clock.iso(T0 + datetime.timedelta(seconds=seconds))


def figures(caller, **query):
    response = caller.get("/api/v1/monitor/grids", query_string=query)
    assert response.status_code == 200, response.json
    return {row["code"]: row for row in response.json["items"]}


def test_per_grid_figures(day, login):
    rows = figures(login("sup"))
    assert set(rows) == {GRID_CODE, GRID_OTHER}  # the supervisor's community
    a = rows[GRID_CODE]
    assert {k: a[k] for k in ("submitted", "pending", "confirmed", "rejected", "returned",
                              "conflict", "invalid_attempts")} == {
        "submitted": 3, "pending": 1, "confirmed": 1, "rejected": 0, "returned": 1,
        "conflict": 0, "invalid_attempts": 2}
    assert a["oldest_pending"] == iso(0)
    assert a["median_review_seconds"] == 120.0  # (60 + 180) / 2
    assert a["last_activity"] == iso(180)
    assert a["records"] == {"person": 1}
    assert a["workers"] == [{"worker": "w3", "submitted": 3, "invalid_attempts": 2,
                             "last_activity": iso(0)}]
    assert a["name"] == "网格003" and a["level"] == "grid"
    b = rows[GRID_OTHER]
    assert (b["submitted"], b["confirmed"], b["oldest_pending"], b["median_review_seconds"]) \
        == (1, 1, None, 300.0)


def test_roll_ups(day, login):
    admin = login("admin")
    community = figures(admin, under=COMMUNITY, level="community")[COMMUNITY]
    assert (community["submitted"], community["pending"], community["confirmed"],
            community["returned"], community["invalid_attempts"]) == (4, 1, 2, 1, 2)
    assert community["median_review_seconds"] == 180.0  # of 60, 180, 300
    assert community["oldest_pending"] == iso(0)
    assert community["records"] == {"person": 2}
    assert community["workers"] is None
    district = figures(admin, level="district")
    assert list(district) == [DISTRICT] and district[DISTRICT]["submitted"] == 4
    streets = figures(admin, under=DISTRICT, level="street")
    assert set(streets) == {STREET, GRID_FAR[:9]}
    assert streets[GRID_FAR[:9]]["submitted"] == 0  # no activity, still listed
    city = figures(admin, level="city")[""]
    assert city["submitted"] == 4 and city["last_activity"] == iso(310)


def test_a_grid_without_activity_is_listed_with_zeros(day, login):
    far = figures(login("supfar"))[GRID_FAR]
    assert far["submitted"] == 0 and far["median_review_seconds"] is None
    assert far["oldest_pending"] is None and far["workers"] == [] and far["records"] == {}


def test_figures_follow_a_conflict_and_its_resolution(day, login, at, db):
    w3, sup = login("w3"), login("sup")
    at(400)
    stale = w3.submit(item("s", person(1, name="李四"), base_version=0)).json["results"][0]["id"]
    at(460)
    sup.post(f"/api/v1/submissions/{stale}/review", json={"action": "confirm"})
    assert figures(sup)[GRID_CODE]["conflict"] == 1
    at(1000)
    sup.post(f"/api/v1/submissions/{stale}/review", json={"action": "confirm", "force": True})
    a = figures(sup)[GRID_CODE]
    assert (a["conflict"], a["confirmed"]) == (0, 2)
    assert a["median_review_seconds"] == 180.0  # of 60, 180 and 600 (settled at 1000)


def test_live_figures_equal_a_recount(day, db):
    tables = ("monitor_areas", "monitor_records", "monitor_workers", "monitor_field_errors")
    live = {t: sorted(map(tuple, db.execute(f"SELECT * FROM {t}"))) for t in tables}
    times = sorted(map(tuple, db.execute("SELECT * FROM monitor_review_times")))
    with store.write(db):
        store.recount_monitor(db)
    assert {t: sorted(map(tuple, db.execute(f"SELECT * FROM {t}"))) for t in tables} == live
    assert sorted(map(tuple, db.execute("SELECT * FROM monitor_review_times"))) == times


def test_most_frequent_field_errors(day, login):
    response = login("sup").get("/api/v1/monitor/fields?record_type=person")
    items = response.json["items"]
    assert [(i["field"], i["code"], i["count"]) for i in items] == [
        ("id_number", "checksum", 2), ("name", "null", 1)]
    assert "公民身份号码" in items[0]["message"]
    assert login("supfar").get("/api/v1/monitor/fields").json["items"] == []


@pytest.mark.parametrize("user, query, status", [
    ("supfar", {"under": COMMUNITY}, 404),  # another street: as if it did not exist
    ("sup", {"under": DISTRICT}, 404),  # wider than its scope
    ("sup", {"under": GRID_CODE}, 200),
    ("sup", {"level": "district"}, 400),  # coarser than its scope
    ("w3", {}, 403), ("analyst", {}, 403),
    ("admin", {"level": "planet"}, 422),
    ("admin", {"cursor": "abc"}, 400),
])
def test_scope_and_bad_queries(day, login, user, query, status):
    response = login(user).get("/api/v1/monitor/grids", query_string=query)
    assert response.status_code == status, response.json


def test_paging_by_cursor(day, login):
    admin = login("admin")
    first = admin.get("/api/v1/monitor/grids?limit=2").json
    assert [r["code"] for r in first["items"]] == [GRID_CODE, GRID_OTHER]
    rest = admin.get(f"/api/v1/monitor/grids?limit=2&cursor={first['next']}").json
    assert [r["code"] for r in rest["items"]] == [GRID_FAR] and rest["next"] is None


def test_rebuild_keeps_the_figures(day, db):
    before = sorted(map(tuple, db.execute("SELECT * FROM monitor_areas")))
    workflow.rebuild(db)
    assert sorted(map(tuple, db.execute("SELECT * FROM monitor_areas"))) == before


@pytest.mark.parametrize("histogram, expected", [
    ([], None),
    ([(5.0, 1)], 5.0),
    ([(1.0, 1), (2.0, 1)], 1.5),
    ([(1.0, 2), (9.0, 1)], 1.0),
    ([(1.0, 1), (2.0, 2), (3.0, 1)], 2.0),
    ([(1.0, 2), (3.0, 2)], 2.0),
    ([(0.004, 3), (1230.0, 1)], 0.004),
])
def test_median_of_a_histogram(histogram, expected):
    from gridcollect.monitor import median
    assert median(histogram) == expected


def test_a_batch_across_grids_and_workers_counts_as_a_recount_would(db):
    """insert_submissions adds a batch's figures at once, per area and worker."""
    rows = [dict(zip(store.SUBMISSION_COLUMNS, [
        worker, f"{worker}-{i}", "person", grid, "upsert", id_number(i), person(i), "pending",
        "2026-11-20T10:00:00.000+08:00", f"2026-11-21T10:00:0{i}.000+08:00", "2026.1", None,
        None])) for i, (worker, grid) in enumerate([
            ("w3", GRID_CODE), ("w3", GRID_CODE), ("w4", GRID_OTHER), ("wfar", GRID_FAR),
            ("w3", GRID_OTHER)])]
    with store.write(db):
        store.insert_submissions(db, rows[:2])
        store.insert_submissions(db, rows[2:])
    live = derived_tables(db)
    assert dict(db.execute("SELECT area, submitted FROM monitor_areas WHERE area IN"
                           " ('', '420502001', '420502001002')")) == {
        "": 5, "420502001": 4, "420502001002": 4}
    with store.write(db):
        store.recount_monitor(db)
    assert derived_tables(db) == live
