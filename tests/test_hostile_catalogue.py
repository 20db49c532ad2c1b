"""The catalogue of hostile input: one table of named cases, each a request, the exact
answer it must get (status and problem code from gridcollect/errors.py, or the per-item
status of a batch), what it may change in the database (by default: nothing), and a
server that still answers an ordinary request right after.

Every case adds 1 to the figure "hostile inputs tried", and 1 to "5xx seen" if it was
answered 5xx. Most cases run on the Flask test client against a fresh database; the
last table (LIVE) runs over real HTTP against ``python server.py``.
"""
import csv
import http.client
import io
import itertools
import json
import secrets
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import quote

import openpyxl
import pytest
from conftest import (FAST_HASH, GRID_CODE, GRID_FAR, PASSWORD, Caller, event, id_number, item,
                      person, seed, send_and_confirm)

from gridcollect import accounts
from gridcollect.errors import PROBLEMS

API = "/api/v1"
MIB = 1024 * 1024
TEN_MB = 10 * MIB
L = 100_000  # "a very long string"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"
OTHER_JPEG = JPEG.replace(b"\x00" * 64, b"\x01" * 64)
HOUSE = f"{GRID_CODE}-012-01-0101"
# what the database holds: each count must stay as it was unless a case says otherwise
WATCHED = ("submissions", "invalid_attempts", "audit", "photos", "users", "tokens",
           "login_failures", "records", "record_history", "releases", "grids")
# a spreadsheet runs a cell starting with one of these as a formula
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- the world every case runs in -----------------------------------------------------------
#
# Built once per module, then restored before each case (the database by SQLite's backup,
# the photo and release folders by copying): a fresh world in milliseconds.

USERNAMES = ("w3", "w4", "wfar", "sup", "supfar", "analyst", "admin")


@dataclass
class World:
    pending: int  # a pending submission of w3 (in GRID_CODE), with a photo
    photo: str  # the photo's sha256
    release: int  # a release holding a confirmed person and house
    idn: str  # the confirmed person's ID number
    tokens: dict  # username -> token; "forged", "expired", "revoked": admin tokens that fail

    def fill(self, text: str) -> str:
        return (text.replace("{pending}", str(self.pending)).replace("{photo}", self.photo)
                .replace("{release}", str(self.release)).replace("{idn}", self.idn))


@dataclass
class Context:
    app: object
    client: object
    world: World

    @property
    def db(self):
        return self.app.extensions["gridcollect"].db()

    def login(self, username) -> Caller:
        return Caller(self.client, self.world.tokens[username])


def build_world(app) -> World:
    client = app.test_client()
    seed(app.extensions["gridcollect"].db())
    tokens = {}
    for username in USERNAMES:
        response = client.post(f"{API}/auth/token",
                               json={"username": username, "password": PASSWORD})
        tokens[username] = response.json["token"]

    def login(username):
        return Caller(client, tokens[username])

    send_and_confirm(login, "confirmed-person", person(1))
    send_and_confirm(login, "confirmed-house", {"house_code": HOUSE, "usage": "2",
                                                "address": "西陵区某路 1 号"}, record_type="house")
    pending = login("w3").submit(item("pending", person(2))).json["results"][0]["id"]
    photo = login("w3").post(f"{API}/submissions/{pending}/photos", data=JPEG,
                             content_type="image/jpeg")
    assert photo.status_code == 201, photo.json
    release = login("analyst").post(f"{API}/releases", json={"note": "catalogue"})
    assert release.status_code == 201, release.json

    def admin_token():
        response = client.post(f"{API}/auth/token",
                               json={"username": "admin", "password": PASSWORD})
        token = response.json["token"]
        assert client.get(f"{API}/me", headers=bearer(token)).status_code == 200
        return token

    expired, revoked = admin_token(), admin_token()
    db = app.extensions["gridcollect"].db()
    db.execute("UPDATE tokens SET expires_at = '2000-01-01T00:00:00.000+08:00'"
               " WHERE token_hash = ?", [accounts.token_hash(expired)])
    db.conn.commit()
    assert client.delete(f"{API}/auth/token", headers=bearer(revoked)).status_code == 204
    tokens.update(forged=secrets.token_urlsafe(32), expired=expired, revoked=revoked)
    return World(pending=pending, photo=photo.json["sha256"], release=release.json["id"],
                 idn=id_number(1), tokens=tokens)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    from gridcollect.app import create_app
    folder = tmp_path_factory.mktemp("catalogue")
    app = create_app({"DATABASE": str(folder / "city.db"), "SCRYPT_N": FAST_HASH,
                      "TESTING": True})
    world = build_world(app)
    runtime = app.extensions["gridcollect"]
    saved = folder / "saved"
    saved.mkdir()
    with sqlite3.connect(saved / "city.db") as copy:
        runtime.db().conn.backup(copy)
    copy.close()
    for name, path in (("photos", runtime.photo_dir), ("releases", runtime.release_dir)):
        shutil.copytree(path, saved / name)
    return app, world, saved


@pytest.fixture
def ctx(template) -> Context:
    """The module's app on a database restored to the world as it was built."""
    app, world, saved = template
    runtime = app.extensions["gridcollect"]
    runtime.db().conn.close()
    runtime._local.pid = None  # the next db() opens a new connection
    with sqlite3.connect(saved / "city.db") as source, \
            sqlite3.connect(runtime.db_path) as target:
        source.backup(target)
    source.close()
    target.close()
    for name, path in (("photos", runtime.photo_dir), ("releases", runtime.release_dir)):
        shutil.rmtree(path)
        shutil.copytree(saved / name, path)
    return Context(app, app.test_client(), world)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def snapshot(db) -> dict:
    counts = {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
              for table in WATCHED}
    counts["states"] = dict(db.execute("SELECT id, state FROM submissions").fetchall())
    counts["user rows"] = db.execute(
        "SELECT username, role, scope, password_hash, unmasked, disabled FROM users"
        " ORDER BY username").fetchall()
    return counts


# --- the catalogue ------------------------------------------------------------------------

NO_JSON = object()


@dataclass
class Case:
    name: str
    method: str
    path: str  # {pending}, {photo}, {release}, {idn} are filled in from the world
    status: int
    error: str | None = None  # the problem code of a refusal
    who: str | None = "w3"  # a username, None (no token), "forged", "expired", "revoked"
    json: object = NO_JSON  # a JSON body, or a function of the world giving one
    body: object = None  # raw bytes, or a function giving them (built only when run)
    content_type: str | None = None
    headers: dict = field(default_factory=dict)
    changes: dict = field(default_factory=dict)  # table -> rows added (all others: 0)
    phrase: str | None = None  # a part of the English message
    item: tuple | None = None  # a batch answered 200: (status, field, code) of its item
    check: Callable | None = None  # more checks: check(response, ctx)
    marks: tuple = ()

    def param(self):
        return pytest.param(self, id=self.name, marks=self.marks)


CASES: list = []


def case(*args, **kwargs):
    CASES.append(Case(*args, **kwargs))


# 1. bodies that are not acceptable JSON, on every endpoint that takes JSON -------------------

JSON_ENDPOINTS = {
    "login": (None, "POST", f"{API}/auth/token"),
    "submit": ("w3", "POST", f"{API}/submissions"),
    "review": ("sup", "POST", f"{API}/submissions/{{pending}}/review"),
    "bulk review": ("sup", "POST", f"{API}/reviews"),
    "add user": ("admin", "POST", f"{API}/users"),
    "change user": ("admin", "PATCH", f"{API}/users/w3"),
    "release": ("analyst", "POST", f"{API}/releases"),
}
JSON_CT = "application/json"
BROKEN_BODIES = {
    # name: (body, content type, status, problem, phrase)
    "empty body": (b"", JSON_CT, 400, "bad_json", None),
    "null": (b"null", JSON_CT, 422, "invalid_request", None),
    "a bare string": (b'"admin"', JSON_CT, 422, "invalid_request", None),
    "Latin-1 bytes": ('{"note": "José", "username": "José"}'.encode("latin-1"), JSON_CT, 400,
                      "bad_json", "not UTF-8"),
    "UTF-16 with BOM": ('{"note": "x"}'.encode("utf-16"), JSON_CT, 400, "bad_json",
                        "not UTF-8"),
    "a stray continuation byte": (b'{"note": "\x80"}', JSON_CT, 400, "bad_json", "not UTF-8"),
    "100,000 nested lists": (lambda: b"[" * L, JSON_CT, 400, "bad_json", "nested too deeply"),
    "100,000 nested lists, closed": (lambda: b"[" * L + b"]" * L, JSON_CT, 400, "bad_json",
                                     "nested too deeply"),
    "100,000 nested objects": (lambda: b'{"a":' * L, JSON_CT, 400, "bad_json",
                               "nested too deeply"),
    "an escaped lone surrogate": (b'{"note": "\\ud800", "username": "\\udfff"}', JSON_CT, 400,
                                  "bad_json", "surrogate"),
    "trailing garbage": (b"{}}", JSON_CT, 400, "bad_json", None),
    "text/plain": (b"{}", "text/plain", 415, "unsupported_media_type", "application/json"),
    "a form": (b"username=admin&note=x", "application/x-www-form-urlencoded", 415,
               "unsupported_media_type", "application/json"),
    "multipart": (b"--x\r\n\r\n{}\r\n--x--", "multipart/form-data; boundary=x", 415,
                  "unsupported_media_type", "application/json"),
    "no content type": (b"{}", None, 415, "unsupported_media_type", "application/json"),
    "10 MB": (lambda: b"{" + b" " * (TEN_MB - 2) + b"}", JSON_CT, 413, "too_large",
              str(8 * MIB)),
}
for endpoint, (who, method, path) in JSON_ENDPOINTS.items():
    for body_name, (body, content_type, status, error, phrase) in BROKEN_BODIES.items():
        case(f"{endpoint}: {body_name}", method, path, status, error, who=who, body=body,
             content_type=content_type, phrase=phrase)


# 2. strings of 100,000 characters -------------------------------------------------------------

FAILED_LOGIN = {"audit": 1, "login_failures": 2}  # per name and per address
INVALID_ITEM = {"invalid_attempts": 1}

case("100,000 characters in a field", "POST", f"{API}/submissions", 200,
     json={"submissions": [item("long", person(3, name="张" * L))]},
     item=("invalid", "name", "too_long"), changes=INVALID_ITEM)
case("100,000 characters in an address", "POST", f"{API}/submissions", 200,
     json={"submissions": [item("long", {"house_code": f"{GRID_CODE}-012-01-0102",
                                         "usage": "2", "address": "路" * L}, "house")]},
     item=("invalid", "address", "too_long"), changes=INVALID_ITEM)
case("100,000 characters as a client_id", "POST", f"{API}/submissions", 422,
     "invalid_request", json={"submissions": [item("c" * L)]})
case("100,000 characters in a review note", "POST", f"{API}/submissions/{{pending}}/review",
     422, "invalid_request", who="sup",
     json={"action": "return", "note": "请" * L})
case("100,000 characters in a bulk review note", "POST", f"{API}/reviews", 422,
     "invalid_request", who="sup",
     json=lambda w: {"ids": [w.pending], "action": "reject", "note": "请" * L})
case("100,000 characters as a review action", "POST", f"{API}/submissions/{{pending}}/review",
     422, "invalid_request", who="sup", json={"action": "c" * L})
case("100,000 characters in a release note", "POST", f"{API}/releases", 422,
     "invalid_request", who="analyst", json={"note": "注" * L})
case("100,000 characters as a login username", "POST", f"{API}/auth/token", 422,
     "invalid_request", who=None, json={"username": "u" * L, "password": PASSWORD})
case("100,000 characters as a login password", "POST", f"{API}/auth/token", 422,
     "invalid_request", who=None, json={"username": "w3", "password": "p" * L})
case("100,000 characters as a new username", "POST", f"{API}/users", 422, "invalid_request",
     who="admin", json={"username": "u" * L, "role": "worker", "scope": [GRID_CODE],
                        "password": "a long password"})
case("100,000 characters as a new password", "PATCH", f"{API}/users/w3", 422,
     "invalid_request", who="admin", json={"password": "p" * L})
case("100,000 characters as a scope", "PATCH", f"{API}/users/w3", 422, "invalid_request",
     who="admin", json={"scope": ["4" * L]})
case("100,000 characters as a username in the path", "GET", f"{API}/users/{'u' * L}", 404,
     "not_found", who="admin")
case("100,000 characters as a username to change", "PATCH", f"{API}/users/{'u' * L}", 404,
     "not_found", who="admin", json={"disabled": True})
case("100,000 characters as a username to revoke", "POST",
     f"{API}/users/{'u' * L}/revoke-tokens", 404, "not_found", who="admin")
case("100,000 characters as a username to unlock", "POST",
     f"{API}/users/{'u' * L}/unlock", 404, "not_found", who="admin")
case("100,000 characters as a record key", "GET", f"{API}/records/house/{'1' * L}", 404,
     "not_found", who="sup")
case("100,000 characters as a record type", "GET", f"{API}/records/{'p' * L}", 404,
     "not_found", who="sup")
case("100,000 digits as a submission id", "GET", f"{API}/submissions/{'1' * L}", 404,
     "not_found")
case("100,000 characters as a photo name", "GET",
     f"{API}/submissions/{{pending}}/photos/{'a' * L}", 404, "not_found")
for who, path in [("sup", "/submissions?grid="), ("sup", "/submissions?cursor="),
                  ("sup", "/submissions?state="), ("sup", "/submissions?since="),
                  ("sup", "/submissions?limit="), ("w3", "/grids?under="),
                  ("w3", "/grids?cursor="), ("sup", "/records/person?grid="),
                  ("sup", "/records/person?changed_since="), ("sup", "/monitor/grids?under="),
                  ("sup", "/monitor/grids?level="), ("sup", "/monitor/fields?under="),
                  ("admin", "/audit?actor="), ("admin", "/audit?object_id="),
                  ("analyst", "/releases?cursor="),
                  ("analyst", "/releases/{release}/tables/person.csv?labels="),
                  ("w3", f"/grids/{GRID_CODE}/standards?format=")]:
    case(f"100,000 characters in a query parameter: {path}", "GET", API + path + "1" * L, 422,
         "invalid_request", who=who)
case("100,000 characters as a query parameter name", "GET",
     f"{API}/records/person?{'k' * L}=1", 400, "unknown_filter", who="sup")
case("100,000 characters as a record filter value", "GET",
     f"{API}/records/house?address={'x' * L}", 400, "bad_filter_value", who="sup")
case("100,000 characters as a bearer token", "GET", f"{API}/me", 401, "token_invalid",
     headers={"Authorization": "Bearer " + "a" * L}, who=None)


# 3. NUL and bidi-control characters -------------------------------------------------------------

NUL, RLO, LRI = "\x00", "\u202e", "\u2066"
for label, char in (("NUL", NUL), ("U+202E", RLO), ("U+2066", LRI)):
    case(f"{label} in a name", "POST", f"{API}/submissions", 200,
         json={"submissions": [item("ctl", person(3, name=f"张{char}伟"))]},
         item=("invalid", "name", "control_character"), changes=INVALID_ITEM)
    case(f"{label} in an event description", "POST", f"{API}/submissions", 200,
         json={"submissions": [item("ctl", event(description=f"楼道堆放杂物{char}存在隐患"),
                                    "event")]},
         item=("invalid", "description", "control_character"), changes=INVALID_ITEM)
    case(f"{label} in a client_id", "POST", f"{API}/submissions", 422, "invalid_request",
         json={"submissions": [item(f"a{char}b")]})
    case(f"{label} in a review note", "POST", f"{API}/submissions/{{pending}}/review", 422,
         "invalid_request", who="sup", json={"action": "return", "note": f"请{char}核实"})
    case(f"{label} in a bulk review note", "POST", f"{API}/reviews", 422, "invalid_request",
         who="sup", json=lambda w, c=char: {"ids": [w.pending], "action": "return",
                                            "note": f"请{c}核实"})
    case(f"{label} in a release note", "POST", f"{API}/releases", 422, "invalid_request",
         who="analyst", json={"note": f"发布{char}说明"})
    case(f"{label} in a new username", "POST", f"{API}/users", 422, "bad_account",
         who="admin", json={"username": f"w{char}9", "role": "worker", "scope": [GRID_CODE],
                            "password": "a long password"})
    case(f"{label} in a grid code", "POST", f"{API}/submissions", 200,
         json={"submissions": [item("ctl", grid_code=f"{GRID_CODE}{char}")]},
         item=("forbidden", None, None))
    case(f"{label} in a query parameter", "GET",
         f"{API}/submissions?state=pending{quote(char)}", 422,
         "invalid_request", who="sup")


def no_control_characters_in_the_audit_log(response, ctx):
    """A failed login is audited with the name it tried: no control, bidi or NUL
    character may reach the audit log (U+202E makes "\u202enimda" read as "admin")."""
    import unicodedata
    rows = ctx.db.execute("SELECT actor, object_id FROM audit ORDER BY id DESC LIMIT 1")
    for value in rows.fetchone():
        bad = [hex(ord(c)) for c in value if unicodedata.category(c) in ("Cc", "Cf")]
        assert not bad, f"audit row holds {bad}: {value!r}"


for label, username in (("NUL", "ad\x00min"), ("U+202E", "\u202enimda"),
                        ("a newline", "admin\nlogin ok"), ("an ANSI escape", "\x1b[2Kadmin")):
    case(f"{label} in a login username", "POST", f"{API}/auth/token", 401, "bad_credentials",
         who=None, json={"username": username, "password": "wrong password"},
         changes=FAILED_LOGIN, check=no_control_characters_in_the_audit_log)
case("NUL in a username in the path", "GET", f"{API}/users/w3%00", 404, "not_found",
     who="admin")
case("U+202E in a username in the path", "GET", f"{API}/users/%E2%80%AEw3", 404, "not_found",
     who="admin")
case("NUL after a record key", "GET", f"{API}/records/person/{{idn}}%00", 404, "not_found",
     who="sup")
case("NUL after a table name", "GET", f"{API}/releases/{{release}}/tables/person.csv%00", 404,
     "not_found", who="analyst")
case("NUL in a bearer token", "GET", f"{API}/me", 401, "token_invalid", who=None,
     headers={"Authorization": "Bearer abc\x00def"})


def no_items(response, ctx):
    assert response.json == {"items": [], "next": None}


LISTED = {"audit": 1}  # every page of records read is audited
case("NUL as a record filter value", "GET", f"{API}/records/person?name=%00", 200, who="sup",
     changes=LISTED, check=no_items)
case("U+202E as a record filter value", "GET", f"{API}/records/house?address=%E2%80%AE", 200,
     who="sup", changes=LISTED, check=no_items)


# 4. full-width digits in identifiers ---------------------------------------------------------

FW_GRID = GRID_CODE.translate(FULL_WIDTH)
case("full-width submission id", "GET", f"{API}/submissions/１", 404, "not_found")
case("full-width submission id to review", "POST", f"{API}/submissions/１/review", 404,
     "not_found", who="sup", json={"action": "confirm"})
case("full-width release id", "GET", f"{API}/releases/１", 404, "not_found", who="analyst")
case("full-width release id of a table", "GET", f"{API}/releases/１/tables/person.csv", 404,
     "not_found", who="analyst")
case("full-width grid code in the path", "GET", f"{API}/grids/{FW_GRID}", 404, "not_found")
case("full-width grid code in an item", "POST", f"{API}/submissions", 200,
     json={"submissions": [item("fw", grid_code=FW_GRID)]}, item=("forbidden", None, None))
case("full-width grid filter", "GET", f"{API}/submissions?grid={FW_GRID}", 422,
     "invalid_request", who="sup")
case("full-width prefix for grids", "GET", f"{API}/grids?under=４２０５０２", 422,
     "invalid_request")
case("full-width prefix for monitoring", "GET", f"{API}/monitor/grids?under=４２０５０２",
     422, "invalid_request", who="sup")
case("full-width scope", "PATCH", f"{API}/users/w3", 422, "invalid_request", who="admin",
     json={"scope": [FW_GRID]})
case("full-width ids to review", "POST", f"{API}/reviews", 422, "invalid_request", who="sup",
     json={"ids": ["１"], "action": "confirm"})
case("full-width base_version", "POST", f"{API}/submissions", 422, "invalid_request",
     json={"submissions": [item("fw", base_version="１")]})
case("full-width replaces", "POST", f"{API}/submissions", 422, "invalid_request",
     json={"submissions": [item("fw", replaces="１")]})
case("full-width login username", "POST", f"{API}/auth/token", 401, "bad_credentials",
     who=None, json={"username": "ｗ３", "password": PASSWORD}, changes=FAILED_LOGIN)


def same_person(response, ctx):
    """A full-width ID number names the same person as its ASCII digits."""
    record = response.json["items"][0] if "items" in response.json else response.json
    assert record["key"] == ctx.world.idn and record["key"].isascii()


case("full-width ID number as a record key", "GET",
     f"{API}/records/person/{id_number(1).translate(FULL_WIDTH)}", 200, who="sup",
     changes={"audit": 1}, check=same_person)  # the read of its history is audited
case("full-width ID number as a record filter", "GET",
     f"{API}/records/person?id_number={id_number(1).translate(FULL_WIDTH)}", 200, who="sup",
     changes=LISTED, check=same_person)


# 5. SQL and HTML: stored verbatim, inert on export -------------------------------------------

SQL = "Robert'); DROP TABLE records;--"
HTML = "<script>alert(document.cookie)</script><img src=x onerror=alert(1)>"


def tables(db):
    return {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def released_tables(ctx) -> int:
    """Confirm every pending submission, make a release; its id."""
    ids = [i for (i,) in ctx.db.execute("SELECT id FROM submissions WHERE state = 'pending'")]
    reviewed = ctx.login("admin").post(f"{API}/reviews", json={"ids": ids, "action": "confirm"})
    assert {r["state"] for r in reviewed.json["results"]} == {"confirmed"}, reviewed.json
    release = ctx.login("analyst").post(f"{API}/releases", json={"note": "after a case"})
    assert release.status_code == 201, release.json
    return release.json["id"]


def export(ctx, who, release, table):
    response = ctx.login(who).get(f"{API}/releases/{release}/tables/{table}")
    assert response.status_code == 200, response.data[:300]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    return response


def csv_cells(response) -> list:
    assert response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"), newline="")))


def xlsx_cells(response) -> list:
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    return [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row]


def stored_verbatim(values: dict):
    """The text (``{field: value}`` of the house, person and event sent) is kept as
    sent, the database's tables are all there, and the release's JSON holds it as is."""
    def check(response, ctx):
        assert {r["status"] for r in response.json["results"]} == {"accepted"}
        assert tables(ctx.db) >= {"records", "submissions", "audit", "users"}
        release = released_tables(ctx)
        for table, data in values.items():
            rows = json.loads(export(ctx, "admin", release, f"{table}.json").data)
            assert any(all(row.get(k) == v for k, v in data.items()) for row in rows), rows
            cells = {c for row in csv_cells(export(ctx, "admin", release, f"{table}.csv"))
                     for c in row}
            for value in data.values():
                assert value in cells or "'" + value in cells
            xlsx = {c.value for c in xlsx_cells(export(ctx, "admin", release, f"{table}.xlsx"))}
            for value in data.values():
                assert value in xlsx or "'" + value in xlsx
    return check


case("SQL in names and addresses", "POST", f"{API}/submissions", 200,
     json={"submissions": [
         item(SQL, person(3, name=SQL)),
         item("sql-house", {"house_code": f"{GRID_CODE}-012-01-0103", "usage": "2",
                            "address": SQL, "owner_name": SQL}, "house")]},
     changes={"submissions": 2, "audit": 2},
     check=stored_verbatim({"person": {"name": SQL},
                            "house": {"address": SQL, "owner_name": SQL}}))
case("HTML in an address and a description", "POST", f"{API}/submissions", 200,
     json={"submissions": [
         item("html-house", {"house_code": f"{GRID_CODE}-012-01-0104", "usage": "2",
                             "address": HTML}, "house"),
         item("html-event", event(description=HTML), "event")]},
     changes={"submissions": 2, "audit": 2},
     check=stored_verbatim({"house": {"address": HTML}, "event": {"description": HTML}}))


def note_kept(response, ctx):
    assert response.json["note"] == SQL


case("SQL in a release note", "POST", f"{API}/releases", 201, who="analyst",
     json={"note": SQL}, changes={"releases": 1, "audit": 1}, check=note_kept)
for who, path in [("sup", f"/records/house?address={quote(SQL)}"),
                  ("sup", f"/records/house?address={quote(chr(39) + ' OR ' + chr(39) + '1')}"),
                  ("sup", "/records/person?name=%27%20OR%201%3D1--"),
                  ("sup", f"/records/house?usage={quote('2 OR 1=1')}"),
                  ("admin", f"/audit?actor={quote(chr(39) + ' OR ' + chr(39) + '1')}"),
                  ("admin", f"/audit?object_id={quote('1 OR 1=1')}")]:
    case(f"SQL in a filter: {path}", "GET", API + path, 200, who=who,
         changes=LISTED if path.startswith("/records") else {}, check=no_items)
case("SQL as a record key", "GET", f"{API}/records/house/{quote(HOUSE + SQL)}", 404,
     "not_found", who="sup")
case("SQL as a record type", "GET", f"{API}/records/{quote('house;DROP TABLE records')}", 404,
     "not_found", who="sup")
case("SQL as a table in a release", "GET",
     f"{API}/releases/{{release}}/tables/{quote('person;DROP TABLE person')}.csv", 404,
     "not_found",
     who="analyst")


# 6. spreadsheet formulas: neutralised in CSV and XLSX exports of a release -------------------

FORMULAS = {"cmd": "=cmd|' /C calc'!A0", "plus": "+1", "minus": "-1+1", "at": "@SUM(1)",
            "tab": "\t=1", "cr": "\r=1"}


def formula_items(formula: str, n: int) -> list:
    items = [item(f"f-person-{n}", person(10 + n, name=formula)),
             item(f"f-house-{n}", {"house_code": f"{GRID_CODE}-013-01-010{n}", "usage": "2",
                                   "address": formula, "owner_name": formula}, "house")]
    if len(formula.strip()) >= 5:  # an event's description has at least 5 characters
        items.append(item(f"f-event-{n}", event(description=formula), "event"))
    return items


def neutralised(formula: str, fmt: str):
    shown = "'" + formula.strip()  # free text is stripped when it is received

    def check(response, ctx):
        assert {r["status"] for r in response.json["results"]} == {"accepted"}, response.json
        release = released_tables(ctx)
        for who in ("admin", "analyst"):  # clear and masked
            for table in ("person", "house", "event"):
                got = export(ctx, who, release, f"{table}.{fmt}")
                if fmt == "csv":
                    values = [c for row in csv_cells(got) for c in row]
                else:
                    cells = xlsx_cells(got)
                    assert [c.coordinate for c in cells if c.data_type == "f"] == []
                    values = [c.value for c in cells if isinstance(c.value, str)]
                assert [v for v in values if v.startswith(FORMULA_START)] == []
                if who == "admin" and (table != "event" or len(formula.strip()) >= 5):
                    assert shown in values, (table, values)
    return check


for n, (label, formula) in enumerate(FORMULAS.items()):
    for fmt in ("csv", "xlsx"):
        items = formula_items(formula, n)
        case(f"formula {label} {formula!r} in a {fmt} export", "POST", f"{API}/submissions", 200,
             json={"submissions": items},
             changes={"submissions": len(items), "audit": len(items)},
             check=neutralised(formula, fmt))


# 7. path tricks --------------------------------------------------------------------------

for path in ["../../etc/passwd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/etc/passwd",
             f"{GRID_CODE}/../{GRID_FAR}", f"{GRID_CODE}\x00"]:
    case(f"path trick as an item's grid code: {path!r}", "POST", f"{API}/submissions", 200,
         json={"submissions": [item("t", grid_code=path)]}, item=("forbidden", None, None))
for who, path in [
        ("w3", f"/grids/..%2F..%2F{GRID_FAR}"), ("w3", "/grids/%2Fetc%2Fpasswd"),
        ("w3", f"/grids/%2e%2e/{GRID_FAR}"), ("w3", f"/grids/{GRID_CODE}%00/standards"),
        ("w3", "/submissions/{pending}/photos/..%2F..%2F..%2Fetc%2Fpasswd"),
        ("w3", "/submissions/{pending}/photos/%2e%2e%2f{photo}"),
        ("w3", "/submissions/{pending}/photos/%2Fetc%2Fpasswd"),
        ("w3", "/submissions/{pending}/photos/{photo}%00"),
        ("w3", "/submissions/{pending}/photos/{photo}%2F..%2F..%2F{photo}"),
        ("sup", "/records/..%2Fusers"), ("sup", "/records/%2e%2e/users"),
        ("sup", "/records/person/..%2F..%2Fusers"), ("sup", "/records/house/%2Fetc%2Fpasswd"),
        ("analyst", "/releases/{release}/tables/..%2F..%2Fetc%2Fpasswd.csv"),
        ("analyst", "/releases/{release}/tables/%2e%2e%2fperson.csv"),
        ("analyst", "/releases/{release}/tables/%2Fetc%2Fpasswd"),
        ("analyst", "/releases/{release}/tables/person.csv%2F..%2F..%2Fgridcollect.db"),
        ("admin", "/users/..%2Fadmin"), ("admin", "/users/%2e%2e"),
        (None, "/docs/assets/..%2F..%2F..%2F..%2Fetc%2Fpasswd"),
        (None, "/docs/assets/%2e%2e/%2e%2e/%2e%2e/gridcollect/app.py"),
        (None, "/docs/assets/../../../etc/passwd"),
        (None, "/docs/assets/swagger-ui.css%00")]:
    case(f"path trick in a URL: {path}", "GET", API + path, 404, "not_found", who=who)
for path in ["/static/..%2Fapp.py", "/static/%2e%2e/app.py", "/static/../../server.py"]:
    case(f"path trick in a URL: {path}", "GET", path, 404, "not_found", who=None)


def redirected_inside_the_assets(response, ctx):
    """``assets//etc/passwd`` has its double slash merged: it stays under the assets."""
    location = response.headers["Location"]
    assert location.endswith("/api/v1/docs/assets/etc/passwd"), location
    again = ctx.client.get("/api/v1/docs/assets/etc/passwd")
    assert again.status_code == 404 and again.json["error"] == "not_found"


case("an absolute path as a docs asset", "GET", f"{API}/docs/assets/%2Fetc%2Fpasswd", 308,
     who=None, check=redirected_inside_the_assets)
for path in ["../420502", "/420502", "420502/../420502", "420502\x00"]:
    case(f"path trick as a scope: {path!r}", "PATCH", f"{API}/users/w3", 422,
         "invalid_request", who="admin", json={"scope": [path]})


def stored_by_its_digest_only(response, ctx):
    """A client's file name is ignored: the photo is stored under its SHA-256."""
    digest = response.json["sha256"]
    root = ctx.app.extensions["gridcollect"].photo_dir
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert f"{digest[:2]}/{digest}" in files
    assert all(len(f) == 67 and "evil" not in f for f in files), files
    assert not any((root.parent / name).exists() for name in ("evil.jpg", "evil"))


case("a path as a photo's file name", "POST", f"{API}/submissions/{{pending}}/photos", 201,
     body=OTHER_JPEG, content_type="image/jpeg",
     headers={"Content-Disposition": 'attachment; filename="../../evil.jpg"',
              "X-File-Name": "/etc/passwd"},
     changes={"photos": 1, "audit": 1}, check=stored_by_its_digest_only)


# 8. photos -------------------------------------------------------------------------------------

PHOTOS = f"{API}/submissions/{{pending}}/photos"
case("a photo of 10 MB and one byte", "POST", PHOTOS, 413, "too_large",
     body=lambda: JPEG[:4] + b"\x00" * (TEN_MB - 6) + b"\xff\xd9\x00",
     content_type="image/jpeg", phrase=str(TEN_MB))
case("an empty photo", "POST", PHOTOS, 422, "empty_photo", body=b"", content_type="image/jpeg")
case("an SVG photo", "POST", PHOTOS, 415, "unsupported_media_type",
     body=b"<svg onload=alert(1)>", content_type="image/svg+xml")
case("HTML sent as a PNG", "POST", PHOTOS, 422, "bad_photo",
     body=b"<html><script>alert(1)</script>", content_type="image/png")
case("a JPEG sent as a PNG", "POST", PHOTOS, 422, "bad_photo", body=JPEG,
     content_type="image/png")
case("a cut-off JPEG", "POST", PHOTOS, 422, "bad_photo", body=JPEG[:-2],
     content_type="image/jpeg")
case("JSON sent to the photo endpoint", "POST", PHOTOS, 415, "unsupported_media_type",
     json={"photo": "x"})


# 9. forged, expired and revoked tokens, on reads and on every kind of change ------------------

TOKEN_TARGETS = [
    ("GET", f"{API}/me", NO_JSON),
    ("POST", f"{API}/submissions", {"submissions": [item("t")]}),
    ("POST", f"{API}/submissions/{{pending}}/review", {"action": "confirm"}),
    ("POST", f"{API}/reviews", lambda w: {"ids": [w.pending], "action": "confirm"}),
    ("POST", f"{API}/users", {"username": "intruder", "role": "admin",
                              "password": "a long password"}),
    ("PATCH", f"{API}/users/w3", {"role": "admin"}),
    ("POST", f"{API}/users/w3/revoke-tokens", NO_JSON),
    ("POST", f"{API}/users/w3/unlock", NO_JSON),
    ("POST", f"{API}/releases", {"note": "x"}),
    ("GET", f"{API}/releases/{{release}}/tables/person.csv", NO_JSON),
    ("GET", f"{API}/audit", NO_JSON),
    ("DELETE", f"{API}/auth/token", NO_JSON),
]
for kind in ("forged", "expired", "revoked"):
    for method, path, body in TOKEN_TARGETS:
        case(f"{kind} token: {method} {path}", method, path, 401, "token_invalid", who=kind,
             json=body)


# 10. what the outside security review found (issue 17) ---------------------------------------

for label, text in [("a comma and then an offset", "2026-12-01T10:00:00,-08:00"),
                    ("ISO basic form", "20261201T100000"), ("a week date", "2026-W49-1"),
                    ("an hour alone", "2026-12-01T10"), ("a 24th hour", "2026-12-01T24:00"),
                    ("an offset of a day", "2026-12-01T10:00+24:00")]:
    case(f"a timestamp with {label}: {text!r}", "POST", f"{API}/submissions", 200,
         json={"submissions": [item("ts", event(occurred_at=text), "event")]},
         item=("invalid", "occurred_at", "timestamp"), changes=INVALID_ITEM)
for label, text in [("in year 1", "0001-01-01"), ("a decade ago", "2016-12-01T10:00:00+08:00")]:
    case(f"collected {label}", "POST", f"{API}/submissions", 200,
         json={"submissions": [item("old", person(3), collected_at=text)]},
         item=("invalid", "collected_at", "too_old"), changes=INVALID_ITEM)
for label, password in [("eight spaces", " " * 8), ("spaced-out letters", " a b c d e f "),
                        ("one character", "xxxxxxxxxx"), ("the username", "newcomer"),
                        ("a common password", "Password123"), ("digits 1-8", "12345678")]:
    case(f"a new user's password of {label}", "POST", f"{API}/users", 422, "bad_account",
         who="admin", json={"username": "newcomer", "role": "worker", "scope": [GRID_CODE],
                            "password": password})
    if password != "newcomer":  # (w3's own name is too short to be a password at all)
        case(f"a password changed to {label}", "PATCH", f"{API}/users/w3", 422,
             "bad_account", who="admin", json={"password": password})


def waits_for_the_owning_grid(response, ctx):
    """wfar's own supervisor confirms: the person stays in w3's grid, nothing shows."""
    [result] = response.json["results"]
    reviewed = ctx.login("supfar").post(f"{API}/submissions/{result['id']}/review",
                                        json={"action": "confirm"}).json
    assert reviewed["state"] == "awaiting_move" and reviewed["conflict"] is None
    for who in ("wfar", "supfar"):
        assert ctx.login(who).get(f"{API}/records/person/{ctx.world.idn}").status_code == 404
    record = ctx.login("sup").get(f"{API}/records/person/{ctx.world.idn}").json
    assert record["grid_code"] == GRID_CODE and record["data"]["name"] == "张伟"


def looks_missing(response, ctx):
    [result] = response.json["results"]
    reviewed = ctx.login("supfar").post(f"{API}/submissions/{result['id']}/review",
                                        json={"action": "confirm"}).json
    assert reviewed["conflict"] == {"reason": "stale_base_version", "version": 0}


case("another grid's person, taken by knowing the ID number", "POST", f"{API}/submissions",
     200, who="wfar", json={"submissions": [item("take", person(1, name="冒名"),
                                                 grid_code=GRID_FAR)]},
     item=("accepted", None, None), changes={"submissions": 1, "audit": 1},
     check=waits_for_the_owning_grid)
case("another grid's person, probed by a base version", "POST", f"{API}/submissions", 200,
     who="wfar", json={"submissions": [item("probe", person(1), grid_code=GRID_FAR,
                                            base_version=1)]},
     item=("accepted", None, None), changes={"submissions": 1, "audit": 1}, check=looks_missing)


# --- running a case -----------------------------------------------------------------------------

def send(ctx, case_: Case):
    world = ctx.world
    headers = dict(case_.headers)
    if case_.who is not None:
        headers.update(bearer(world.tokens[case_.who]))
    kwargs = {}
    if case_.json is not NO_JSON:
        kwargs["json"] = case_.json(world) if callable(case_.json) else case_.json
    elif case_.body is not None:
        kwargs["data"] = case_.body() if callable(case_.body) else case_.body
        if case_.content_type is not None:
            kwargs["content_type"] = case_.content_type
    return ctx.client.open(world.fill(case_.path), method=case_.method, headers=headers,
                           **kwargs)


def assert_problem(response, status, error, phrase=None):
    """The one error shape, with this status and problem code from errors.PROBLEMS."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    body = response.json
    assert set(body) == {"code", "status", "message", "error", "errors"}, body
    assert body["code"] == status and body["status"] == HTTPStatus(status).phrase
    assert body["error"] == error and PROBLEMS[error][0] == status
    zh, en = body["message"].split(" / ", 1)
    assert zh == PROBLEMS[error][1] and en
    if phrase:
        assert phrase in en, en
    if error in ("auth_required", "token_invalid"):
        assert response.headers["WWW-Authenticate"] == "Bearer"


ALIVE = itertools.count()  # fresh client ids


def assert_alive(ctx):
    """An ordinary read and an ordinary write still work."""
    me = ctx.login("w3").get(f"{API}/me")
    assert me.status_code == 200 and me.json["username"] == "w3"
    sent = ctx.login("w3").submit(item(f"alive-{next(ALIVE)}", person(900)))
    assert sent.json["results"][0]["status"] == "accepted", sent.json


@pytest.mark.parametrize("case_", [c.param() for c in CASES])
def test_hostile_input(ctx, figures, case_):
    db = ctx.db
    before = snapshot(db)
    response = send(ctx, case_)
    response.get_data()
    figures("hostile inputs tried", 1)
    figures("5xx seen", 1 if response.status_code >= 500 else 0)
    if case_.error is not None:
        assert_problem(response, case_.status, case_.error, case_.phrase)
    else:
        assert response.status_code == case_.status, response.get_data(as_text=True)[:500]
    if case_.item is not None:
        status, field_, code = case_.item
        [result] = response.json["results"]
        assert result["status"] == status, result
        if field_ is not None:
            assert (field_, code) in {(e["field"], e["code"]) for e in result["errors"]}
    expected = dict(before)
    for table, added in case_.changes.items():
        expected[table] += added
    after = snapshot(db)
    after["states"] = {i: s for i, s in after["states"].items() if i in before["states"]}
    changed = {k: (expected[k], after[k]) for k in after if after[k] != expected[k]}
    assert changed == {}, f"changed (expected, found): {changed}"
    if case_.check is not None:
        case_.check(response, ctx)
    assert_alive(ctx)


def test_the_catalogue_is_large_and_its_names_unique():
    names = [c.name for c in CASES] + [c.name for c in LIVE]
    assert len(names) == len(set(names))
    assert len(CASES) >= 300
    assert {c.error for c in CASES + LIVE} - {None} <= set(PROBLEMS)


# --- over real HTTP: python server.py (gunicorn) ------------------------------------------------

@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from live import Phone, Server, log_problems, make_city
    folder = tmp_path_factory.mktemp("catalogue")
    db = make_city(folder)
    server = Server(db, folder / "server.log")
    phones = {name: Phone(server.url, name) for name in ("w3", "sup")}
    pending = phones["w3"].post("/submissions", json={"submissions": [item("p", person(2))]})
    server.pending = pending.json()["results"][0]["id"]
    yield server, db, phones
    server.stop()
    assert log_problems(folder / "server.log") == []


def live_counts(db) -> dict:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in WATCHED} | {
            "states": conn.execute("SELECT id, state FROM submissions").fetchall()}


def raw_request(port, head: bytes, body: bytes = b"", chunked=False) -> tuple:
    """Send bytes as they are (no client-side checks); (status, headers, body). A server
    may answer and close before it has read everything: the answer is read all the same."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.connect()
        try:
            conn.sock.sendall(head + b"\r\n")
            if chunked:
                for start in range(0, len(body), 1 << 20):
                    part = body[start:start + (1 << 20)]
                    conn.sock.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
                conn.sock.sendall(b"0\r\n\r\n")
            else:
                conn.sock.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = http.client.HTTPResponse(conn.sock)
        response.begin()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def head(method, path, token=None, content_type=None, length=None, extra=b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode("latin-1"), b"Host: 127.0.0.1"]
    if token:
        lines.append(f"Authorization: Bearer {token}".encode())
    if content_type:
        lines.append(f"Content-Type: {content_type}".encode())
    if length is not None:
        lines.append(f"Content-Length: {length}".encode())
    return b"\r\n".join(lines) + b"\r\n" + extra


@dataclass
class LiveCase:
    name: str
    make: Callable  # (server, phones) -> (head, body, chunked)
    status: int
    error: str | None  # None: refused by gunicorn itself, before the app


def _json_post(path, who, body, content_type="application/json", chunked=False):
    def make(server, phones):
        token = phones[who].session.headers["Authorization"].split()[1] if who else None
        data = body() if callable(body) else body
        if chunked:
            extra = b"Transfer-Encoding: chunked\r\n"
            return head("POST", path.format(pending=server.pending), token, content_type,
                        extra=extra), data, True
        return head("POST", path.format(pending=server.pending), token, content_type,
                    len(data)), data, False
    return make


def padded_batch(size: int) -> bytes:
    """A batch of one valid item, padded with spaces to ``size`` bytes."""
    batch = json.dumps({"submissions": [item("padded", person(7))]}).encode()
    return batch + b" " * (size - len(batch))


LIVE = [
    LiveCase("10 MB of JSON, sent whole", _json_post(
        f"{API}/submissions", "w3", lambda: b"[" + b" " * (TEN_MB - 2) + b"]"), 413, "too_large"),
    LiveCase("10 MB of JSON, chunked (no length)", _json_post(
        f"{API}/submissions", "w3", lambda: b"[" + b" " * (TEN_MB - 2) + b"]", chunked=True),
        413, "too_large"),
    LiveCase("10 MB of JSON before logging in", _json_post(
        f"{API}/auth/token", None, lambda: b"{" + b" " * (TEN_MB - 2) + b"}"), 413,
        "too_large"),
    LiveCase("chunked, over 8 MiB, valid JSON in its first 8 MiB", _json_post(
        f"{API}/submissions", "w3", lambda: padded_batch(8 * MIB) + b"this is not JSON",
        chunked=True), 413, "too_large"),
    LiveCase("a photo of 10 MB and one byte, sent whole", _json_post(
        f"{API}/submissions/{{pending}}/photos", "w3",
        lambda: JPEG[:4] + b"\x00" * (TEN_MB - 6) + b"\xff\xd9\x00", "image/jpeg"), 413,
        "too_large"),
    LiveCase("a chunked photo of 10 MB and one byte", _json_post(
        f"{API}/submissions/{{pending}}/photos", "w3",
        lambda: JPEG[:4] + b"\x00" * (TEN_MB - 6) + b"\xff\xd9\x00", "image/jpeg",
        chunked=True), 413, "too_large"),
    LiveCase("Latin-1 login", _json_post(
        f"{API}/auth/token", None, '{"username": "José", "password": "x"}'.encode("latin-1")),
        400, "bad_json"),
    LiveCase("UTF-16 review", _json_post(
        f"{API}/reviews", "sup", '{"ids": [1], "action": "confirm"}'.encode("utf-16")), 400,
        "bad_json"),
    LiveCase("100,000 nested lists, chunked", _json_post(
        f"{API}/submissions", "w3", lambda: b"[" * L, chunked=True), 400, "bad_json"),
    LiveCase("a non-UTF-8 path", lambda s, p: (
        head("GET", f"{API}/grids/", p["w3"].session.headers["Authorization"].split()[1])
        .replace(b"/grids/ ", b"/grids/\xff\xfe "), b"", False), 400, None),
    LiveCase("a non-UTF-8 bearer token", lambda s, p: (
        head("GET", f"{API}/me") + b"Authorization: Bearer \xff\xfe\xfd\r\n", b"", False),
        401, "token_invalid"),
    LiveCase("a path of 100,000 characters", lambda s, p: (
        head("GET", f"{API}/grids/{'4' * L}"), b"", False), 414, None),
    LiveCase("a query of 100,000 characters", lambda s, p: (
        head("GET", f"{API}/submissions?grid={'4' * L}"), b"", False), 414, None),
    LiveCase("a header of 100,000 characters", lambda s, p: (
        head("GET", f"{API}/me", "a" * L), b"", False), 431, None),
]


@pytest.mark.slow
@pytest.mark.parametrize("case_", LIVE, ids=lambda c: c.name)
def test_hostile_input_over_http(live, figures, case_):
    server, db, phones = live
    before = live_counts(db)
    request_head, body, chunked = case_.make(server, phones)
    status, headers, answer = raw_request(server.port, request_head, body, chunked)
    figures("hostile inputs tried", 1)
    figures("5xx seen", 1 if status >= 500 else 0)
    assert status == case_.status, answer[:300]
    if case_.error is not None:
        problem = json.loads(answer)
        assert problem["error"] == case_.error and problem["code"] == status
    assert live_counts(db) == before
    assert phones["w3"].get("/me").status_code == 200
    sent = phones["w3"].post("/submissions", json={"submissions": [
        item(secrets.token_hex(8), person(900))]})
    assert sent.json()["results"][0]["status"] in ("accepted", "duplicate")
