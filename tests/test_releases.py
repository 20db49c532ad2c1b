"""Releases: frozen snapshots of the master tables, their dictionary, and exports as
CSV, JSON and XLSX, masked per role and safe to open in a spreadsheet."""
import csv
import io
import json
import os
import pathlib
import sqlite3
import subprocess
import sys
import textwrap

import openpyxl
import pytest
from conftest import FAST_HASH, GRID_CODE, GRID_FAR, PASSWORD, id_number, person, send_and_confirm
from hypothesis import given, settings
from hypothesis import strategies as st

from gridcollect import access, accounts, releases, store

KEY = id_number(1)
FORMULA_ADDRESS = "=HYPERLINK(\"http://evil\",\"点击\")"


@pytest.fixture
def merged(login):
    send_and_confirm(login, "p1", person(1, special_groups=["独居老人", "残疾人"], education="20"))
    send_and_confirm(login, "p2", person(2, name="-李四"))
    send_and_confirm(login, "far", person(3), worker="wfar", grid_code=GRID_FAR, supervisor="supfar")
    send_and_confirm(login, "h1", {"house_code": f"{GRID_CODE}-012-01-0101", "usage": "2",
                            "address": FORMULA_ADDRESS, "area": 88.5}, record_type="house")


@pytest.fixture
def release(merged, login):
    response = login("analyst").post("/api/v1/releases", json={"note": "2026 年第 4 季度"})
    assert response.status_code == 201, response.json
    return response.json


def export(caller, release_id, table, **query):
    response = caller.get(f"/api/v1/releases/{release_id}/tables/{table}", query_string=query)
    assert response.status_code == 200, response.data[:300]
    return response


def read_csv(response):
    assert response.data.startswith("\ufeff".encode())
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"), newline="")))


def test_a_release_counts_its_tables_and_is_listed(release, login):
    assert release["counts"] == {"person": 3, "house": 1, "organization": 0, "event": 0}
    assert release["created_by"] == "analyst" and release["note"] == "2026 年第 4 季度"
    assert release["standard_versions"]["person"] == "2026.1"
    analyst = login("analyst")
    assert [r["id"] for r in analyst.get("/api/v1/releases").json["items"]] == [release["id"]]
    assert analyst.get(f"/api/v1/releases/{release['id']}").json == release


def test_the_release_file_is_self_describing_and_read_only(release, app, db):
    row = store.get_release(db, release["id"])
    path = os.path.join(app.config["DATABASE"] + "-releases", row["file"])
    assert not os.access(path, os.W_OK) or os.geteuid() == 0
    assert oct(os.stat(path).st_mode & 0o777) == "0o444"
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"person", "house", "organization", "event", "_columns", "_codes",
            "_release"} <= tables
    meta = dict(conn.execute("SELECT key, value FROM _release"))
    assert json.loads(meta["note"]) == "2026 年第 4 季度" and json.loads(meta["id"]) == row["id"]
    assert conn.execute("SELECT label FROM _codes WHERE code_table = 'gb_t_2261_1'"
                        " AND code = '1'").fetchone() == ("男性",)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_later_confirmations_do_not_change_an_existing_release(release, login):
    analyst = login("admin")
    before = export(analyst, release["id"], "person.csv").data
    send_and_confirm(login, "p1b", person(1, name="张大伟"))
    send_and_confirm(login, "p4", person(4))
    assert export(analyst, release["id"], "person.csv").data == before
    newer = analyst.post("/api/v1/releases", json={"note": "更新"}).json
    assert newer["counts"]["person"] == 4
    rows = read_csv(export(analyst, newer["id"], "person.csv"))
    assert next(r for r in rows if r["key"] == KEY)["name"] == "张大伟"


def test_csv_for_an_admin_is_complete(release, login):
    rows = read_csv(export(login("admin"), release["id"], "person.csv"))
    assert len(rows) == 3
    first = next(r for r in rows if r["key"] == KEY)
    assert first["id_number"] == KEY and first["name"] == "张伟"
    assert first["special_groups"] == "独居老人;残疾人" and first["version"] == "1"
    assert first["grid_code"] == GRID_CODE
    assert list(rows[0])[:5] == ["key", "grid_code", "version", "created_at", "updated_at"]


def test_csv_for_a_masked_analyst(release, login):
    rows = read_csv(export(login("analyst"), release["id"], "person.csv"))
    first = next(r for r in rows if r["key"] == KEY[:6] + "********" + KEY[-4:])
    assert first["id_number"] == KEY[:6] + "********" + KEY[-4:]
    assert first["name"] == "张*" and first["phone"] == "138****5678"
    assert "special_groups" not in first  # secret: left out
    assert first["ethnicity"] == "01"


def test_an_analyst_exports_only_rows_in_scope(release, login, db):
    accounts.add_user(db, "test", "far-analyst", "analyst", [GRID_FAR[:9]], PASSWORD,
                      scrypt_n=FAST_HASH)
    rows = read_csv(export(login("far-analyst"), release["id"], "person.csv"))
    assert [r["grid_code"] for r in rows] == [GRID_FAR]


def test_cells_that_look_like_formulas_are_neutralised(release, login):
    [house] = read_csv(export(login("admin"), release["id"], "house.csv"))
    assert house["address"] == "'" + FORMULA_ADDRESS
    assert house["area"] == "88.5" and house["usage"] == "2"
    names = {r["name"] for r in read_csv(export(login("admin"), release["id"], "person.csv"))}
    assert "'-李四" in names


def test_code_columns_with_labels(release, login):
    rows = read_csv(export(login("admin"), release["id"], "person.csv", labels="true"))
    first = next(r for r in rows if r["key"] == KEY)
    assert first["sex.label"] == "男性" and first["ethnicity.label"] == "汉族"
    assert first["education.label"]  # GB/T 4658 code 20
    assert first["special_groups.label"] == "独居老人;残疾人"
    header = list(first)
    assert header.index("sex.label") == header.index("sex") + 1


def test_json_export(release, login):
    response = export(login("admin"), release["id"], "person.json")
    rows = json.loads(response.data)
    first = next(r for r in rows if r["key"] == KEY)
    assert first["special_groups"] == ["独居老人", "残疾人"] and first["version"] == 1
    masked = json.loads(export(login("analyst"), release["id"], "person.json").data)
    assert all("special_groups" not in r and r["name"].endswith("*") for r in masked)
    empty = json.loads(export(login("admin"), release["id"], "event.json").data)
    assert empty == []


def test_xlsx_export_opens_in_openpyxl(release, login):
    response = export(login("analyst"), release["id"], "house.xlsx", labels="true")
    workbook = openpyxl.load_workbook(io.BytesIO(response.data), read_only=True)
    sheet = workbook["house"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("key", "grid_code", "version")
    record = dict(zip(rows[0], rows[1]))
    assert record["address"] == "'" + FORMULA_ADDRESS  # text, not a formula
    assert record["usage.label"] == "出租" and record["area"] == 88.5
    assert record["owner_name"] is None  # personal: masked, but absent stays absent
    assert "owner_name" in rows[0]
    empty = openpyxl.load_workbook(io.BytesIO(export(login("admin"), release["id"],
                                                     "event.xlsx").data), read_only=True)
    assert list(empty["event"].iter_rows(values_only=True))[0][0] == "key"


def test_the_dictionary(release, login):
    body = login("analyst").get(f"/api/v1/releases/{release['id']}/dictionary").json
    person_columns = {c["column"]: c for c in body["tables"]["person"]}
    assert person_columns["sex"]["label_zh"] == "性别"
    assert person_columns["sex"]["code_table"] == "gb_t_2261_1"
    assert person_columns["id_number"]["sensitivity"] == "personal"
    assert person_columns["key"]["sensitivity"] == "personal"  # it is the ID number
    assert person_columns["special_groups"]["sensitivity"] == "secret"
    assert "dog_registration" in person_columns  # a field an overlay adds
    assert person_columns["name"]["free_text"] is True  # a boolean, as documented
    assert person_columns["sex"]["free_text"] is False
    house_columns = {c["column"] for c in body["tables"]["house"]}
    assert {"location.lat", "location.lon"} <= house_columns
    assert body["code_tables"]["gb_t_2261_1"]["codes"]["2"] == "女性"


@pytest.mark.parametrize("user, status", [("w3", 403), ("sup", 403), ("analyst", 200),
                                          ("admin", 200)])
def test_who_reads_releases(release, login, user, status):
    assert login(user).get(f"/api/v1/releases/{release['id']}/tables/person.csv") \
        .status_code == status
    assert login(user).get("/api/v1/releases").status_code == status


@pytest.mark.parametrize("path", ["/api/v1/releases/999", "/api/v1/releases/999/dictionary",
                                  "/api/v1/releases/1/tables/people.csv",
                                  "/api/v1/releases/1/tables/person.pdf",
                                  "/api/v1/releases/999/tables/person.csv"])
def test_missing_releases_and_tables(release, login, path):
    response = login("admin").get(path)
    assert response.status_code == 404 and response.json["error"] == "not_found"


def test_a_release_needs_a_note(merged, login):
    response = login("analyst").post("/api/v1/releases", json={})
    assert response.status_code == 422
    assert login("sup").post("/api/v1/releases", json={"note": "x"}).status_code == 403


def test_releases_are_audited(release, login):
    [entry] = login("admin").get("/api/v1/audit?action=release").json["items"]
    assert entry["actor"] == "analyst" and entry["detail"]["counts"]["person"] == 3


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["id_number", "phone", "name", "other"]),
       value=st.none() | st.text(alphabet=st.characters(exclude_categories=["Cs", "Cc"]),
                                 max_size=30))
def test_sql_masks_equal_the_python_masks(kind, value):
    # (control characters never reach a record: the standards refuse them)
    conn = sqlite3.connect(":memory:")
    [(masked,)] = conn.execute(f"SELECT {store.mask_sql(kind, ':v')}", {"v": value}).fetchall()
    assert masked == access.mask(kind, value)


def test_a_release_whose_file_went_missing_is_not_found(release, login, db):
    path = store.get_release(db, release["id"])["file"]
    os.chmod(path, 0o644)
    os.remove(path)
    for suffix in ("/dictionary", "/tables/person.csv"):
        response = login("admin").get(f"/api/v1/releases/{release['id']}{suffix}")
        assert response.status_code == 404, suffix


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(exclude_categories=["Cs", "Cc"]), max_size=8),
                max_size=4))
def test_lists_render_as_their_items_joined_by_semicolons(items):
    conn = sqlite3.connect(":memory:")
    [(stored,)] = conn.execute("SELECT json(:v)", {"v": json.dumps(items)}).fetchall()
    [(rendered,)] = conn.execute(f"SELECT {store._LIST_FAST.format(v=':v')}",
                                 {"v": stored}).fetchall()
    assert rendered == ";".join(items)


def test_a_release_whose_builder_died_is_failed_and_its_file_deleted(app, db, tmp_path):
    import fcntl

    from gridcollect import releases
    folder = tmp_path / "rel"
    folder.mkdir()
    dead, alive = folder / "dead.sqlite", folder / "alive.sqlite"
    dead.write_bytes(b"SQLite format 3\x00 half written")
    alive.write_bytes(b"")
    # builders that died, or are still waiting, before writing their row
    orphan, unborn = folder / "release-2026-11-21-dead.sqlite", folder / "release-x.sqlite"
    orphan.write_bytes(b"")
    unborn.write_bytes(b"")
    with store.write(db):
        dead_id = store.insert_release(db, "2026-11-21T10:00:00+08:00", "a", "", str(dead))
        alive_id = store.insert_release(db, "2026-11-21T10:00:00+08:00", "a", "", str(alive))
        gone_id = store.insert_release(db, "2026-11-21T10:00:00+08:00", "a", "",
                                       str(folder / "never-created.sqlite"))
    with open(alive, "rb") as builder, open(unborn, "rb") as waiting:
        fcntl.flock(builder, fcntl.LOCK_EX)  # a build still running holds its file's lock
        fcntl.flock(waiting, fcntl.LOCK_EX)
        assert releases.fail_abandoned(db, folder) == [dead_id, gone_id]
    assert not dead.exists() and alive.exists()
    assert not orphan.exists() and unborn.exists()
    states = {r: store.get_release(db, r)["state"] for r in (dead_id, alive_id, gone_id)}
    assert states == {dead_id: "failed", alive_id: "building", gone_id: "failed"}


def test_a_builder_killed_before_its_row_exists_leaves_no_file(app):
    """A builder makes and locks its file, then queues for the write lock to insert its
    row (up to 30 s under load): killed in between, it leaves a file no row names."""
    db_path = app.config["DATABASE"]
    folder = pathlib.Path(f"{db_path}-releases")
    killed = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import os, signal
        from gridcollect import store
        from gridcollect.cli import main
        def die(*args):
            os.kill(os.getpid(), signal.SIGKILL)
        store.insert_release = die
        main(["release", "--note", "cut", "--db", {db_path!r}])
    """)], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    db = store.connect(db_path)
    releases.fail_abandoned(db, folder)  # what the server does when it next starts
    ready = {r["file"] for r in db.query("SELECT file FROM releases WHERE state = 'ready'")}
    assert {str(p) for p in folder.iterdir()} == ready
