"""Security: headers on every answer, an audit log the API cannot alter, no secret or
ID number in the server's log, tokens that stop working everywhere at once, throttled
guessing, and out-of-scope objects that look exactly like missing ones.

(The authorization matrix is tests/test_authz.py; hostile input, tests/
test_hostile_catalogue.py. The parts against real servers are marked slow.)
"""
import re
import secrets
import socket
import sqlite3
import time
import unicodedata
import urllib.parse

import pytest
import requests
from conftest import (GRID_CODE, GRID_FAR, GRID_OTHER, PASSWORD, event, id_number, item, person,
                      send_and_confirm)

from gridcollect import accounts
from gridcollect.errors import PROBLEMS

API = "/api/v1"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
PNG = (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00\x00\x00\x01\x00\x00\x00\x01"
       + b"\x08\x02\x00\x00\x00" + b"\x90wS\xde" + b"\x00\x00\x00\x00IEND\xaeB`\x82")
HOUSE = f"{GRID_CODE}-001-01-0101"

# what gridcollect/app.py sets (_security_headers)
API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")


def header_problems(response, path) -> list:
    """What is wrong with the security headers of one answer (empty: nothing)."""
    headers, wrong = response.headers, []
    for name, value in (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
                        ("Referrer-Policy", "no-referrer")):
        if headers.get(name) != value:
            wrong.append(f"{name}: {headers.get(name)!r}")
    docs = path.startswith("/api/v1/docs")
    if headers.get("Content-Security-Policy") != (DOCS_CSP if docs else API_CSP):
        wrong.append(f"Content-Security-Policy: {headers.get('Content-Security-Policy')!r}")
    if not docs:
        # API answers hold personal data: never kept by a shared cache (a proxy)
        directives = {d.strip().split("=")[0]
                      for d in headers.get("Cache-Control", "").lower().split(",")}
        if "public" in directives or not directives & {"no-store", "private"}:
            wrong.append(f"Cache-Control: {headers.get('Cache-Control')!r}")
    return wrong


# --- a world with one of everything ---------------------------------------------------------

@pytest.fixture
def world(login, app):
    """A pending submission of w3 with a photo, a confirmed house, a release; ids."""
    send_and_confirm(login, "house", {"house_code": HOUSE, "usage": "2", "address": "某路 1 号"},
                     record_type="house")
    send_and_confirm(login, "person", person(1))
    pending = login("w3").submit(item("pending", person(2))).json["results"][0]["id"]
    photo = login("w3").post(f"{API}/submissions/{pending}/photos", data=PNG,
                             content_type="image/png")
    assert photo.status_code == 201, photo.json
    release = login("analyst").post(f"{API}/releases", json={"note": "headers"})
    assert release.status_code == 201
    # wfar's entry for w3's person, confirmed by supfar: a move request for sup
    move = login("wfar").submit(item("move", person(1), grid_code=GRID_FAR)).json[
        "results"][0]["id"]
    moving = login("supfar").post(f"{API}/submissions/{move}/review", json={"action": "confirm"})
    assert moving.json["state"] == "awaiting_move"
    key = login("admin").post(f"{API}/users/w3/openrosa-keys", json={})
    assert key.status_code == 201
    return {"pending": pending, "photo": photo.json["sha256"], "release": release.json["id"],
            "move": move, "key": key.json["key_id"]}


# (rule, method) -> (caller, path, request kwargs) of a request that succeeds
def successes(world) -> dict:
    pending, photo, release = world["pending"], world["photo"], world["release"]
    tables = ("/api/v1/releases/<id:release_id>/tables/<any(person, house, organization, "
              "event):record_type>.<any(csv, json, xlsx):fmt>")
    return {
        ("/", "GET"): (None, "/", {}),
        ("/static/<path:filename>", "GET"): (None, "/static/nothing.css", {}),  # no folder
        ("/api/v1/openapi.json", "GET"): (None, f"{API}/openapi.json", {}),
        ("/api/v1/docs", "GET"): (None, f"{API}/docs", {}),
        ("/api/v1/docs/", "GET"): (None, f"{API}/docs/", {}),
        ("/api/v1/docs/assets/<path:filename>", "GET"): (
            None, f"{API}/docs/assets/swagger-ui.css", {}),
        ("/api/v1/auth/token", "POST"): (None, f"{API}/auth/token", {
            "json": {"username": "w4", "password": PASSWORD}}),
        ("/api/v1/auth/token", "DELETE"): ("supfar", f"{API}/auth/token", {}),
        ("/api/v1/me", "GET"): ("w3", f"{API}/me", {}),
        ("/api/v1/grids", "GET"): ("w3", f"{API}/grids", {}),
        ("/api/v1/grids/<code>", "GET"): ("w3", f"{API}/grids/{GRID_CODE}", {}),
        ("/api/v1/grids/<code>/standards", "GET"): (
            "w3", f"{API}/grids/{GRID_CODE}/standards", {}),
        ("/api/v1/submissions", "POST"): ("w3", f"{API}/submissions", {
            "json": {"submissions": [item("new", person(3))]}}),
        ("/api/v1/submissions", "GET"): ("w3", f"{API}/submissions", {}),
        ("/api/v1/submissions/<id:submission_id>", "GET"): (
            "w3", f"{API}/submissions/{pending}", {}),
        ("/api/v1/submissions/<id:submission_id>/photos", "POST"): (
            "w3", f"{API}/submissions/{pending}/photos", {
                "data": PNG[:-12] + b"\x00\x00\x00\x00IEND\xaeB`\x82\x00",
                "content_type": "image/png"}),
        ("/api/v1/submissions/<id:submission_id>/photos/<sha256>", "GET"): (
            "w3", f"{API}/submissions/{pending}/photos/{photo}", {}),
        ("/api/v1/submissions/<id:submission_id>/review", "POST"): (
            "sup", f"{API}/submissions/{pending}/review", {
                "json": {"action": "return", "note": "请核实"}}),
        ("/api/v1/reviews", "POST"): ("sup", f"{API}/reviews", {
            "json": {"ids": [pending], "action": "return", "note": "请核实"}}),
        ("/api/v1/records/<record_type>", "GET"): ("sup", f"{API}/records/house", {}),
        ("/api/v1/records/<record_type>/<key>", "GET"): (
            "sup", f"{API}/records/house/{HOUSE}", {}),
        ("/api/v1/monitor/grids", "GET"): ("sup", f"{API}/monitor/grids", {}),
        ("/api/v1/monitor/fields", "GET"): ("sup", f"{API}/monitor/fields", {}),
        ("/api/v1/releases", "POST"): ("analyst", f"{API}/releases", {"json": {"note": "x"}}),
        ("/api/v1/releases", "GET"): ("analyst", f"{API}/releases", {}),
        ("/api/v1/releases/<id:release_id>", "GET"): (
            "analyst", f"{API}/releases/{release}", {}),
        ("/api/v1/releases/<id:release_id>/dictionary", "GET"): (
            "analyst", f"{API}/releases/{release}/dictionary", {}),
        (tables, "GET"): ("analyst", f"{API}/releases/{release}/tables/house.xlsx", {}),
        ("/api/v1/users", "GET"): ("admin", f"{API}/users", {}),
        ("/api/v1/users", "POST"): ("admin", f"{API}/users", {"json": {
            "username": "newbie", "role": "analyst", "password": "a long password"}}),
        ("/api/v1/users/<username>", "GET"): ("admin", f"{API}/users/w3", {}),
        ("/api/v1/users/<username>", "PATCH"): ("admin", f"{API}/users/w3", {
            "json": {"unmasked": False}}),
        ("/api/v1/users/<username>/revoke-tokens", "POST"): (
            "admin", f"{API}/users/wfar/revoke-tokens", {}),
        ("/api/v1/users/<username>/unlock", "POST"): ("admin", f"{API}/users/wfar/unlock", {}),
        ("/api/v1/users/<username>/openrosa-keys", "GET"): (
            "admin", f"{API}/users/w3/openrosa-keys", {}),
        ("/api/v1/users/<username>/openrosa-keys", "POST"): (
            "admin", f"{API}/users/w3/openrosa-keys", {"json": {"days": 7}}),
        ("/api/v1/users/<username>/openrosa-keys/<key_id>", "DELETE"): (
            "admin", f"{API}/users/w3/openrosa-keys/{world['key']}", {}),
        ("/api/v1/audit", "GET"): ("admin", f"{API}/audit", {}),
        ("/api/v1/moves", "GET"): ("sup", f"{API}/moves", {}),
        ("/api/v1/moves/<id:submission_id>", "GET"): ("sup", f"{API}/moves/{world['move']}", {}),
        ("/api/v1/moves/<id:submission_id>", "POST"): ("sup", f"{API}/moves/{world['move']}", {
            "json": {"action": "refuse", "note": "未搬迁"}}),
    }


def served(app) -> set:
    """The API's rules (the console's pages and the OpenRosa routes have their own
    tables, in test_console.py and test_openrosa.py)."""
    return {(rule.rule, method) for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}
            if not rule.rule.startswith(("/console", "/openrosa"))}


RULES = ["/", "/static/<path:filename>", "/api/v1/openapi.json", "/api/v1/docs",
         "/api/v1/docs/assets/<path:filename>", "/api/v1/auth/token", "/api/v1/me",
         "/api/v1/grids", "/api/v1/grids/<code>", "/api/v1/grids/<code>/standards",
         "/api/v1/submissions", "/api/v1/submissions/<id:submission_id>",
         "/api/v1/submissions/<id:submission_id>/photos",
         "/api/v1/submissions/<id:submission_id>/photos/<sha256>",
         "/api/v1/submissions/<id:submission_id>/review", "/api/v1/reviews",
         "/api/v1/records/<record_type>", "/api/v1/records/<record_type>/<key>",
         "/api/v1/monitor/grids", "/api/v1/monitor/fields", "/api/v1/releases",
         "/api/v1/releases/<id:release_id>", "/api/v1/releases/<id:release_id>/dictionary",
         "/api/v1/releases/<id:release_id>/tables/", "/api/v1/users",
         "/api/v1/users/<username>", "/api/v1/users/<username>/revoke-tokens",
         "/api/v1/audit", "/api/v1/moves", "/api/v1/moves/<id:submission_id>",
         "/api/v1/docs/", "/api/v1/users/<username>/unlock",
         "/api/v1/users/<username>/openrosa-keys",
         "/api/v1/users/<username>/openrosa-keys/<key_id>"]


def test_the_table_covers_every_rule_of_the_app(app, world):
    table = set(successes(world))
    assert served(app) - table == set(), "rules without a request in successes()"
    assert table - served(app) == set()
    for rule, _ in served(app):
        assert rule in RULES or (rule.startswith(RULES[23]) and rule.count(".") == 1), rule


@pytest.mark.parametrize("rule_prefix", RULES)
def test_every_answer_of_every_rule_has_the_security_headers(app, client, login, world,
                                                             rule_prefix):
    """For each (rule, method): the answer to a request that succeeds, the same request
    without a token and with a forged one, HEAD, OPTIONS and a method the rule does not
    take (405)."""
    wrong = []
    rows = {key: value for key, value in successes(world).items()
            if key[0] == rule_prefix or (rule_prefix.endswith("/tables/")
                                         and "/tables/" in key[0])}
    assert rows
    for (rule, method), (who, path, kwargs) in rows.items():
        headers = login(who).headers if who else {}
        variants = [("success", method, headers, kwargs),
                    ("no token", method, {}, kwargs),
                    ("forged token", method, {"Authorization": "Bearer " + "x" * 43}, kwargs),
                    ("OPTIONS", "OPTIONS", {}, {})]
        if method == "GET":
            variants.append(("HEAD", "HEAD", headers, {}))
        methods = next(r.methods for r in app.url_map.iter_rules() if r.rule == rule)
        other = next(m for m in ("PUT", "PATCH", "DELETE", "POST", "GET") if m not in methods)
        variants.append(("405", other, headers, {}))
        for label, verb, request_headers, request_kwargs in variants:
            response = client.open(path, method=verb, headers=request_headers,
                                   **request_kwargs)
            response.get_data()
            response.close()
            if label == "success" and rule != "/static/<path:filename>":  # no such folder
                assert response.status_code < 400, (rule, method, response.status_code,
                                                     response.get_data(as_text=True)[:200])
            if label == "405":
                assert response.status_code == 405, (rule, other)
            for problem in header_problems(response, path):
                wrong.append(f"{method} {rule} ({label}, {response.status_code}): {problem}")
    assert wrong == []


def test_other_answers_have_the_security_headers(app, client, login, world, db):
    """Redirects, 304s, 404s for unknown paths, 413, 415, 400, 422, 409, 403, 429 and
    streamed exports in every format."""
    w3, sup, analyst = login("w3"), login("sup"), login("analyst")
    standards = w3.get(f"{API}/grids/{GRID_CODE}/standards")
    photo_url = f"{API}/submissions/{world['pending']}/photos/{world['photo']}"
    photo = w3.get(photo_url)
    photo.close()
    confirmed = db.execute("SELECT id FROM submissions WHERE state = 'confirmed'").fetchone()[0]

    def throttled_login():
        for _ in range(5):
            client.post(f"{API}/auth/token", json={"username": "w4", "password": "wrong"})
        return client.post(f"{API}/auth/token", json={"username": "w4", "password": PASSWORD})

    answers = {  # label: (request, status); each answer is read before the next request
        "unknown path": (lambda: client.get("/nowhere"), 404),
        "unknown API path": (lambda: w3.get(f"{API}/nowhere"), 404),
        "unknown docs path": (lambda: client.get(f"{API}/docs/nowhere"), 404),
        "unknown asset": (lambda: client.get(f"{API}/docs/assets/nothing.js"), 404),
        "home redirect": (lambda: client.get("/"), 302),
        "merged slashes": (lambda: client.get(f"{API}/docs/assets//swagger-ui.css"), 308),
        "304 standards": (lambda: w3.get(f"{API}/grids/{GRID_CODE}/standards", headers={
            "If-None-Match": standards.headers["ETag"]}), 304),
        "304 photo": (lambda: w3.get(photo_url, headers={
            "If-None-Match": photo.headers["ETag"]}), 304),
        "413": (lambda: w3.post(f"{API}/submissions", data=b"{" + b" " * (9 << 20) + b"}",
                                content_type="application/json"), 413),
        "415": (lambda: w3.post(f"{API}/submissions", data=b"{}", content_type="text/plain"),
                415),
        "400": (lambda: w3.post(f"{API}/submissions", data=b"{",
                                content_type="application/json"), 400),
        "422": (lambda: w3.post(f"{API}/submissions", json={}), 422),
        "409": (lambda: sup.post(f"{API}/submissions/{confirmed}/review",
                                 json={"action": "confirm"}), 409),
        "403": (lambda: w3.get(f"{API}/audit"), 403),
        "404 in scope": (lambda: w3.get(f"{API}/submissions/987654"), 404),
        "csv": (lambda: analyst.get(f"{API}/releases/{world['release']}/tables/person.csv"),
                200),
        "json": (lambda: analyst.get(f"{API}/releases/{world['release']}/tables/person.json"),
                 200),
        "429": (throttled_login, 429),
    }
    wrong = []
    for label, (send, status) in answers.items():
        response = send()
        response.get_data()
        response.close()
        assert response.status_code == status, (label, response.status_code)
        path = response.request.path
        wrong += [f"{label}: {problem}" for problem in header_problems(response, path)]
    assert wrong == []


def test_internal_errors_and_busy_answers_have_the_headers_and_hide_the_cause(app, client):
    from gridcollect import store as store_module

    def boom():
        raise RuntimeError("secret detail: /srv/gridcollect.db 420502198001010011")

    def busy():
        raise store_module.Busy()

    def locked():
        raise sqlite3.OperationalError("database is locked")

    for name, view in (("boom", boom), ("busy", busy), ("locked", locked)):
        app.add_url_rule(f"{API}/test-{name}", name, view)
    for name, status, error in (("boom", 500, "internal"), ("busy", 503, "busy"),
                                ("locked", 503, "busy")):
        response = client.get(f"{API}/test-{name}")
        assert response.status_code == status
        assert response.json["error"] == error and PROBLEMS[error][0] == status
        assert "secret" not in response.get_data(as_text=True)
        assert "420502198001010011" not in response.get_data(as_text=True)
        assert header_problems(response, f"{API}/test-{name}") == []
        if status == 503:
            assert response.headers["Retry-After"] == "2"


# --- the audit log cannot be altered through the API ------------------------------------------

CALLERS = ("anonymous", "forged", "w3", "sup", "analyst", "admin")


def audit_rows(db):
    return db.execute("SELECT * FROM audit ORDER BY id").fetchall()


@pytest.mark.parametrize("caller", CALLERS)
def test_the_audit_log_cannot_be_changed_through_the_api(client, login, db, caller):
    login("w3").submit(item("a", person(1)))  # something in the log besides logins
    for who in ("w3", "sup", "analyst", "admin"):
        login(who)
    headers = ({} if caller == "anonymous" else
               {"Authorization": "Bearer " + secrets.token_urlsafe(32)} if caller == "forged"
               else login(caller).headers)
    before = audit_rows(db)
    first = before[0][0]
    entry = {"at": "2026-01-01T00:00:00.000+08:00", "actor": "admin", "action": "login",
             "object_type": "user", "object_id": "admin", "detail": None}
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path, status, error in ((f"{API}/audit", 405, "method_not_allowed"),
                                    (f"{API}/audit/", 404, "not_found"),
                                    (f"{API}/audit/{first}", 404, "not_found"),
                                    (f"{API}/audit/{first}/detail", 404, "not_found"),
                                    (f"{API}/audit?id={first}", 405, "method_not_allowed")):
            response = client.open(path, method=method, headers=headers,
                                   json={**entry, "id": first})
            assert response.status_code == status, (method, path, response.json)
            assert response.json["error"] == error
        # a method override header changes nothing either
        response = client.post(f"{API}/audit", headers={**headers,
                                                       "X-HTTP-Method-Override": method},
                               json=entry)
        assert response.status_code == 405
    assert audit_rows(db) == before
    # the log still reads: admin only
    read = client.get(f"{API}/audit", headers=headers)
    expected = {"anonymous": 401, "forged": 401, "admin": 200}.get(caller, 403)
    assert read.status_code == expected
    assert audit_rows(db) == before


@pytest.mark.parametrize("statement", [
    "INSERT OR REPLACE INTO audit (id, at, actor, action) VALUES (1, 'x', 'forger', 'login')",
    "REPLACE INTO audit (id, at, actor, action) VALUES (1, 'x', 'forger', 'login')",
    "INSERT INTO audit (id, at, actor, action) VALUES (1, 'x', 'forger', 'login')"
    " ON CONFLICT(id) DO UPDATE SET actor = 'forger'",
    "UPDATE OR REPLACE audit SET actor = 'forger' WHERE id = 1",
])
def test_no_sql_conflict_clause_rewrites_an_audit_row(db, login, statement):
    """test_accounts.py checks UPDATE and DELETE; REPLACE deletes the row it replaces
    (a DELETE trigger fires only with recursive triggers on) and an upsert updates it."""
    login("w3")
    before = audit_rows(db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute(statement)
    db.conn.rollback()
    assert audit_rows(db) == before


# --- out of scope looks exactly like missing (beyond the object endpoints of test_authz) ------

MISSING_ID = id_number(3)  # a valid ID number nobody submitted
MISSING_GRID_FAR = "420502002001999"  # well-formed, in the far street, not a grid
MISSING_GRID_NEAR = "420502001002999"  # well-formed, in sup's own community, not a grid


@pytest.fixture
def two_streets(login):
    send_and_confirm(login, "near", person(1))
    send_and_confirm(login, "far", person(2), worker="wfar", grid_code=GRID_FAR,
                     supervisor="supfar")
    send_and_confirm(login, "far-house", {"house_code": f"{GRID_FAR}-001-01-0101",
                                          "usage": "2", "address": "远处某路 2 号"},
                     record_type="house", worker="wfar", grid_code=GRID_FAR,
                     supervisor="supfar")


PROBES = [
    # (caller, out of scope, missing...): every answer byte-identical
    ("sup", f"/records/person/{id_number(2)}", f"/records/person/{MISSING_ID}"),
    ("sup", f"/records/person/{id_number(2).translate(FULL_WIDTH)}",
     f"/records/person/{MISSING_ID.translate(FULL_WIDTH)}"),
    ("w3", f"/records/person/{id_number(2)}", f"/records/person/{MISSING_ID}"),
    ("sup", f"/records/house/{GRID_FAR}-001-01-0101", f"/records/house/{GRID_FAR}-001-01-0102"),
    ("sup", f"/records/person?id_number={id_number(2)}", f"/records/person?id_number={MISSING_ID}"),
    ("sup", f"/records/person?grid={GRID_FAR}", f"/records/person?grid={MISSING_GRID_FAR}",
     f"/records/person?grid={MISSING_GRID_NEAR}"),
    ("w3", f"/records/house?grid={GRID_FAR}", f"/records/house?grid={MISSING_GRID_FAR}"),
    ("sup", f"/submissions?grid={GRID_FAR}", f"/submissions?grid={MISSING_GRID_FAR}",
     f"/submissions?grid={MISSING_GRID_NEAR}"),
    ("w3", f"/submissions?grid={GRID_FAR}", f"/submissions?grid={MISSING_GRID_FAR}"),
    ("w3", "/grids?under=420502002", "/grids?under=420502009"),
    ("sup", "/monitor/grids?under=420502002", "/monitor/grids?under=420502009"),
    ("sup", f"/monitor/grids?under={GRID_FAR}", f"/monitor/grids?under={MISSING_GRID_FAR}"),
    ("sup", "/monitor/grids?under=420502002&level=street",
     "/monitor/grids?under=420502009&level=street"),
    ("sup", "/monitor/fields?under=420502002", "/monitor/fields?under=420502009"),
    ("supfar", f"/records/person/{id_number(1)}", f"/records/person/{MISSING_ID}"),
    # an analyst sees ID numbers masked: a lookup by one is refused, existing or not
    ("analyst", f"/records/person/{id_number(1)}", f"/records/person/{id_number(2)}",
     f"/records/person/{MISSING_ID}"),
    ("analyst", f"/records/person?id_number={id_number(1)}",
     f"/records/person?id_number={MISSING_ID}"),
]


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: f"{p[0]} {p[1]}")
def test_out_of_scope_answers_exactly_like_missing(login, two_streets, probe):
    who, *paths = probe
    caller = login(who)
    answers = [caller.get(API + path) for path in paths]
    first = answers[0]
    assert first.status_code in (200, 403, 404)
    if first.status_code == 200:
        assert first.json["items"] == []
    for other in answers[1:]:
        assert (other.status_code, other.data) == (first.status_code, first.data)
        assert {k: v for k, v in other.headers if k != "Date"} == {
            k: v for k, v in first.headers if k != "Date"}


def test_an_item_for_a_grid_out_of_scope_answers_like_one_for_no_grid(login, db):
    w3 = login("w3")
    far, missing, near_missing = (w3.submit(item("x", person(5), grid_code=code)).json
                                  for code in (GRID_FAR, MISSING_GRID_FAR, MISSING_GRID_NEAR))
    assert far == missing == near_missing == {"results": [
        {"client_id": "x", "status": "forbidden", "id": None, "errors": []}]}
    other = w3.submit(item("y", event(), "event", grid_code=GRID_OTHER)).json
    assert other["results"][0]["status"] == "forbidden"
    assert db.execute("SELECT count(*) FROM submissions").fetchone()[0] == 0


# --- logs, tokens, throttling: over real HTTP (marked slow), and the log filter itself ------

X_INDEX = next(i for i in range(100, 1000) if id_number(i).endswith("X"))
LOG_IDS = [id_number(401), id_number(402), id_number(X_INDEX)]


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    from live import make_city
    folder = tmp_path_factory.mktemp("security")
    return make_city(folder)


@pytest.fixture(scope="module")
def servers(city, tmp_path_factory):
    from live import Server
    folder = tmp_path_factory.mktemp("security-servers")
    first, second = Server(city, folder / "a.log"), Server(city, folder / "b.log")
    yield first, second
    first.stop()
    second.stop()


def log_in(url, username, password=None):
    from live import PASSWORD as LIVE_PASSWORD
    response = requests.post(f"{url}/auth/token", json={
        "username": username, "password": password or LIVE_PASSWORD}, timeout=30)
    return response


def me(url, token):
    return requests.get(f"{url}/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def flat(text: str) -> str:
    """A log line as anyone reading it would: escapes decoded, full-width digits as
    digits, spaces gone, upper case."""
    text = urllib.parse.unquote(text, errors="replace")
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).upper()


@pytest.mark.slow
def test_no_password_token_or_id_number_in_any_log_line(city, tmp_path):
    """Log in (right and wrong passwords), submit persons, look each up by its ID number
    in every form the server accepts, fail a login, send forged and revoked tokens,
    misbehave like a broken phone; then no log line holds a password, an issued token
    or an ID number."""
    from live import PASSWORD as LIVE_PASSWORD
    from live import Server
    log = tmp_path / "server.log"
    server = Server(city, log)
    wrong = "wrong-password-Qz7!"
    tokens = []
    try:
        url = server.url
        assert log_in(url, "w3", wrong).status_code == 401
        sessions = {}
        for username in ("w3", "sup", "admin"):
            response = log_in(url, username)
            assert response.status_code == 200
            tokens.append(response.json()["token"])
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {tokens[-1]}"
            sessions[username] = session
        w3, sup, admin = sessions["w3"], sessions["sup"], sessions["admin"]
        batch = [item(f"log-{n}", person(0, id_number=number.lower(),
                                         sex="1" if int(number[16]) % 2 else "2"))
                 for n, number in enumerate(LOG_IDS)]
        results = w3.post(f"{url}/submissions", json={"submissions": batch}).json()["results"]
        assert [r["status"] for r in results] == ["accepted"] * 3, results
        reviewed = sup.post(f"{url}/reviews", json={"ids": [r["id"] for r in results],
                                                   "action": "confirm"})
        assert {r["state"] for r in reviewed.json()["results"]} == {"confirmed"}
        for number in LOG_IDS:
            for form in (number, number.lower(), number.translate(FULL_WIDTH),
                         urllib.parse.quote(number.translate(FULL_WIDTH)),
                         "".join(f"%{b:02X}" for b in number.encode()), f"%20{number}%20"):
                found = sup.get(f"{url}/records/person/{form}")
                assert found.status_code == 200 and found.json()["key"] == number, form
            listed = sup.get(f"{url}/records/person", params={"id_number": number})
            assert [r["key"] for r in listed.json()["items"]] == [number]
            sup.get(f"{url}/records/person", params={"grid": GRID_CODE, "id_number": number,
                                                     "name": "张伟", "phone": "13812345678"})
            sup.get(f"{url}/submissions", params={"grid": number})  # in a logged parameter
            admin.get(f"{url}/audit", params={"object_id": number, "actor": number})
            sup.get(f"{url}/records/person/{number}", headers={
                "Referer": f"{url}/records/person/{number}?token={tokens[0]}",
                "User-Agent": f"GridPhone/1.0 ({number})"})
        # a careless client putting its token in the query string
        requests.get(f"{url}/me", params={"access_token": tokens[0]}, timeout=30)
        assert me(url, secrets.token_urlsafe(32)).status_code == 401
        assert log_in(url, "sup", LIVE_PASSWORD + "x").status_code == 401
        assert w3.delete(f"{url}/auth/token").status_code == 204
        assert w3.get(f"{url}/me").status_code == 401
        # a broken phone: raw UTF-8 in the request line (gunicorn refuses and logs it)
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
            conn.sendall(f"GET {API}/records/person/{LOG_IDS[0]}?name=张伟 HTTP/1.1\r\n"
                         f"Host: x\r\n\r\n".encode())
            assert conn.recv(12) == b"HTTP/1.1 400"
    finally:
        server.stop()
    secrets_ = {"the password": LIVE_PASSWORD, "a wrong password": wrong,
                **{f"token {n}": token for n, token in enumerate(tokens)}}
    leaks = []
    for number, line in enumerate(log.read_text(errors="replace").splitlines(), start=1):
        for name, secret in secrets_.items():
            if secret in line or secret in urllib.parse.unquote(line):
                leaks.append(f"line {number}: {name}: {line}")
        for id_ in LOG_IDS:
            if id_ in flat(line):
                leaks.append(f"line {number}: ID number {id_}: {line}")
    assert len(log.read_text().splitlines()) > 50  # the log was written
    assert leaks == []


def test_a_logged_traceback_has_its_id_numbers_masked_too():
    """server.py puts gridcollect.logs.RedactFilter on every handler; an internal error is
    logged with its traceback (app._internal_error), and the exception's text is part of
    the line the handler writes."""
    import io
    import logging

    from gridcollect import logs
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(logs.RedactFilter())
    log = logging.getLogger("gridcollect.test-redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise LookupError(f"no record {LOG_IDS[0]}")
        except LookupError:
            log.exception("internal error on GET %s", f"/api/v1/records/person/{LOG_IDS[1]}")
    finally:
        log.removeHandler(handler)
    text = out.getvalue()
    assert LOG_IDS[1] not in text  # the message is masked
    assert "Traceback" in text and LOG_IDS[0] not in text  # and so must the traceback be


@pytest.mark.parametrize("encoded", ["%0A127.0.0.1%20-%20-%20%22GET%20/", "%0D%0A", "%1B%5B2K",
                                     "%E2%80%AE", "%00"],
                         ids=["LF", "CR LF", "ANSI escape", "U+202E", "NUL"])
@pytest.mark.slow
def test_a_request_cannot_write_lines_or_escapes_into_the_log(servers, encoded):
    """A path is logged decoded: an encoded line break, terminal escape, bidi control or
    NUL must not start a line of its own (a forged entry) or reach an operator's screen."""
    first, _ = servers
    marker = secrets.token_hex(6)
    response = requests.get(f"{first.url}/nothing-{marker}{encoded}forged-{marker}",
                            timeout=30)
    assert response.status_code == 404
    lines = []
    for _ in range(50):  # until the access log line is written
        lines = [line for line in first.log_path.read_text(errors="replace").splitlines()
                 if marker in line]
        if any(f"forged-{marker}" in line for line in lines):
            break
        time.sleep(0.1)
    assert len(lines) == 1, lines
    assert f'"GET /api/v1/nothing-{marker}' in lines[0]
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]", lines[0]), lines


@pytest.mark.slow
def test_revoked_expired_and_disabled_tokens_fail_on_every_worker_at_once(servers, city):
    """Two servers (two workers each) on one database: a token revoked, expired or of a
    disabled user on one is refused by every worker of both, from the next request."""
    first, second = servers
    admin = log_in(second.url, "admin").json()["token"]
    tokens = {kind: log_in(first.url, "w4").json()["token"] for kind in ("revoked", "expired")}
    tokens["disabled"] = log_in(first.url, "analyst").json()["token"]
    for token in tokens.values():
        assert me(first.url, token).status_code == 200
    revoked = requests.post(f"{second.url}/users/w4/revoke-tokens",
                            headers={"Authorization": f"Bearer {admin}"}, timeout=30)
    assert revoked.json()["revoked"] >= 2
    tokens["expired"] = log_in(first.url, "w4").json()["token"]  # after the revocation
    with sqlite3.connect(city, timeout=30) as conn:
        conn.execute("UPDATE tokens SET expires_at = '2000-01-01T00:00:00.000+08:00'"
                     " WHERE token_hash = ?", [accounts.token_hash(tokens["expired"])])
    conn.close()
    disabled = requests.patch(f"{second.url}/users/analyst", json={"disabled": True},
                              headers={"Authorization": f"Bearer {admin}"}, timeout=30)
    assert disabled.status_code == 200
    for kind, token in tokens.items():
        for server in (first, second) * 3:  # one request per connection: both workers
            response = me(server.url, token)
            assert response.status_code == 401, (kind, response.text)
            assert response.json()["error"] == "token_invalid"
            assert response.headers["WWW-Authenticate"] == "Bearer"
    assert log_in(first.url, "analyst").status_code == 401  # and no new token
    assert log_in(first.url, "w4").status_code == 200  # revoking is not disabling


@pytest.mark.slow
def test_guessing_is_throttled_across_servers_with_retry_after(servers):
    first, second = servers
    for n in range(5):
        server = (first, second)[n % 2]
        response = log_in(server.url, "wfar", f"guess {n}")
        assert response.status_code == 401 and response.json()["error"] == "bad_credentials"
    for server in (first, second, first, second):
        response = log_in(server.url, "wfar")  # even the right password, for now
        assert response.status_code == 429
        body = response.json()
        assert body["error"] == "throttled" and body["code"] == 429
        retry_after = int(response.headers["Retry-After"])
        assert 60 < retry_after <= 15 * 60 + 1
        assert f"retry after {retry_after} s" in body["message"]
        assert "token" not in body
    assert log_in(second.url, "sup").status_code == 200  # other users are not locked out
