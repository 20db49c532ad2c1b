"""The administrator's command line: init-db, grids import, users."""
import json

import pytest
from click.testing import CliRunner

from conftest import GRID_CODE, grid_geojson
from gridcollect import accounts, store
from gridcollect.cli import main


@pytest.fixture
def run(tmp_path):
    db_path = str(tmp_path / "admin.db")

    def run(*args, input=None, db=True):
        result = CliRunner().invoke(main, [*args, *(["--db", db_path] if db else [])],
                                    input=input, catch_exceptions=False)
        return result

    run.db_path = db_path
    return run


def geojson(tmp_path, features, name="g.geojson"):
    path = tmp_path / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}),
                    encoding="utf-8")
    return str(path)


def feature(code=GRID_CODE, name="第三网格", geometry=None):
    return {"type": "Feature", "properties": {"code": code, "name": name},
            "geometry": geometry or json.loads(grid_geojson(GRID_CODE))}


def test_init_db_creates_then_is_idempotent(run):
    assert f"created, schema version {store.MIGRATIONS[-1][0]}" in run("init-db").output
    assert "up to date" in run("init-db").output


def test_commands_refuse_a_missing_database(run):
    result = run("users", "list")
    assert result.exit_code == 2 and "init-db" in result.output


def test_grids_import_adds_then_updates(run, tmp_path):
    run("init-db")
    path = geojson(tmp_path, [feature()])
    assert "1 added, 0 changed, 0 unchanged" in run("grids", "import", path).output
    assert "0 added, 0 changed, 1 unchanged" in run("grids", "import", path).output
    renamed = geojson(tmp_path, [feature(name="新名字")], "h.geojson")
    assert "1 changed" in run("grids", "import", renamed).output
    assert f"{GRID_CODE}\t新名字" in run("grids", "list").output
    db = store.connect(run.db_path)
    assert store.get_grid(db, GRID_CODE)["revision"] == 2
    assert [e["action"] for e in store.list_audit(db)][:3] == ["grids_import"] * 3


@pytest.mark.parametrize("features, message", [
    ([feature(code="12345")], "15-digit grid code"),
    ([feature(name="")], "name"),
    ([feature(geometry={"type": "Point", "coordinates": [111.29, 30.70]})], "Polygon"),
    ([feature(geometry={"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1],
                                                           [0, 0]]]})], "invalid geometry"),
    ([feature(), feature()], "appears twice"),
])
def test_grids_import_refuses_bad_files_whole(run, tmp_path, features, message):
    run("init-db")
    good = feature(code="420502001002004")
    result = run("grids", "import", geojson(tmp_path, [good, *features]))
    assert result.exit_code == 2 and message in result.output
    assert run("grids", "list").output == ""


def test_users_lifecycle(run):
    run("init-db")
    added = run("users", "add", "li", "--role", "worker", "--scope", GRID_CODE,
                "--password-stdin", input="first password\n")
    assert added.exit_code == 0, added.output
    db = store.connect(run.db_path)
    assert accounts.verify_password("first password", store.get_user(db, "li")["password_hash"])
    assert run("users", "add", "li", "--role", "worker", "--scope", GRID_CODE,
               "--password-stdin", input="first password\n").exit_code == 2
    moved = run("users", "set", "li", "--scope", "420502001002004,420502001002005")
    assert "420502001002004 420502001002005" in moved.output
    assert run("users", "set", "li", "--role", "supervisor", "--scope", "4205").exit_code == 2
    token, _, _ = accounts.login(db, "li", "first password", "test", accounts.Settings())
    assert accounts.authenticate(db, token) is not None
    assert "1 tokens revoked" in run("users", "revoke", "li").output
    assert accounts.authenticate(db, token) is None
    assert run("users", "passwd", "li", "--password-stdin", input="second password\n"
               ).exit_code == 0
    assert accounts.verify_password("second password",
                                    store.get_user(db, "li")["password_hash"])
    listed = json.loads(run("users", "list", "--format", "json").output)
    assert listed == [{"username": "li", "role": "worker",
                       "scope": ["420502001002004", "420502001002005"],
                       "unmasked": False, "disabled": False}]
    assert run("users", "set", "ghost", "--role", "admin").exit_code == 2
    actions = [e["action"] for e in store.list_audit(db)]
    assert actions.count("user_change") == 2 and "user_add" in actions


@pytest.mark.parametrize("args, message", [
    (["--role", "worker"], "needs at least one scope"),
    (["--role", "worker", "--scope", "42050"], "not a grid code prefix"),
])
def test_users_add_refuses_bad_scope(run, args, message):
    run("init-db")
    result = run("users", "add", "x", *args, "--password-stdin", input="long enough\n")
    assert result.exit_code == 2 and message in result.output


def test_short_password_refused(run):
    run("init-db")
    result = run("users", "add", "x", "--role", "admin", "--password-stdin", input="short\n")
    assert result.exit_code == 2 and "at least 8" in result.output


def test_demo_fills_an_empty_database_with_every_state(tmp_path):
    from conftest import FAST_HASH
    from gridcollect import demo, load_standards
    db = store.connect(tmp_path / "demo.db")
    store.migrate(db, "2026-01-01T00:00:00.000+08:00")
    assert demo.is_empty(db)
    users = demo.fill(db, load_standards(), scrypt_n=FAST_HASH)
    assert {role for _, role, _, _ in users} == {"worker", "supervisor", "analyst", "admin"}
    states = {row["state"] for row in store.list_submissions(db, prefixes=None)}
    assert states == {"pending", "confirmed", "returned", "rejected"}
    assert db.execute("SELECT count(*) FROM invalid_attempts").fetchone()[0] == 1
    assert not demo.is_empty(db)
    username, _, _, password = users[0]
    assert accounts.verify_password(password, store.get_user(db, username)["password_hash"])
