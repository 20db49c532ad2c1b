"""Authorization matrix: every endpoint x every kind of caller x in/out of scope.

One row per (URL rule, method) of the app under /api/v1; a new endpoint without
a row fails ``test_the_table_covers_every_endpoint``. Each case runs against a
fresh database holding:

* A: a pending submission by w3 in GRID_CODE (community 420502001002), with a PNG;
* B: a pending submission by wfar in GRID_FAR (street 420502002), with a JPEG;
* move A / B: a person in GRID_CODE that wfar's confirmed entry would move to GRID_FAR,
  and one in GRID_FAR that w3's would move to GRID_CODE (both awaiting_move);
* "missing": an id, grid code or username that does not exist at all.

Whenever an object in someone else's scope is refused, the answer must be
byte-identical to the answer for the missing object, so scope cannot be probed.
"""
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

import pytest
from conftest import GRID_CODE, GRID_FAR, GRID_OTHER, PASSWORD, item, person

from gridcollect.errors import PROBLEMS
from gridcollect.standards import RECORD_TYPES

API = "/api/v1"
LOGGED_IN = ("w3", "w4", "sup", "supfar", "analyst", "admin")
CALLERS = ("anonymous", "forged", *LOGGED_IN)
USERS_ROLE = {"w3": "worker", "w4": "worker", "sup": "supervisor", "supfar": "supervisor",
              "analyst": "analyst", "admin": "admin"}
OBJECTS = ("A", "B", "missing")
MISSING_ID = 987654
MISSING_GRID = "420502001002999"  # well-formed, in sup's community, not a grid
MISSING_USER = "nobody"
# master records (houses: their key is public) in GRID_CODE and GRID_FAR, and one missing
HOUSES = {"A": f"{GRID_CODE}-001-01-0101", "B": f"{GRID_FAR}-001-01-0101",
          "missing": f"{GRID_CODE}-999-01-0101"}

# a minimal valid PNG (signature + IHDR + IEND) and JPEG (SOI ... EOI)
PNG = (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00\x00\x00\x01\x00\x00\x00\x01"
       + b"\x08\x02\x00\x00\x00" + b"\x90wS\xde" + b"\x00\x00\x00\x00IEND\xaeB`\x82")
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"
NEW_PNG = PNG[:-12] + b"\x00\x00\x00\x00IEND\xaeB`\x82\x00"  # a different, still valid PNG


# --- the objects each case runs against ---------------------------------------------

@dataclass
class World:
    ids: dict  # "A" / "B" / "missing" -> submission id
    photos: dict  # "A" / "B" / "missing" -> sha256 on that submission
    houses: dict = field(default_factory=lambda: dict(HOUSES))  # -> master record key
    grids: dict = field(default_factory=lambda: {"A": GRID_CODE, "B": GRID_FAR,
                                                  "missing": MISSING_GRID})
    users: dict = field(default_factory=lambda: {"A": "w3", "B": "wfar",
                                                  "missing": MISSING_USER})
    moves: dict = field(default_factory=dict)  # -> id of a submission awaiting a move


def _houses_and_a_release(app):
    """Two master records written straight into the store, and release 1 of them."""
    from gridcollect import access, releases, store
    runtime = app.extensions["gridcollect"]
    db = runtime.db()
    with store.write(db):
        for seq, obj in enumerate(("A", "B"), start=1):
            key = HOUSES[obj]
            store.put_records(db, [{
                "record_type": "house", "key": key, "grid_code": key[:15], "version": 1,
                "retired": False, "data": {"house_code": key, "address": "某路 1 号",
                                           "usage": "1"},
                "created_at": "2026-11-20T10:00:00.000+08:00",
                "updated_at": "2026-11-20T10:00:00.000+08:00", "seq": seq}])
    releases.create(db, runtime.db_path, runtime.standards,
                    access.User("admin", "admin", ()), "authz", runtime.release_dir)


@pytest.fixture
def world(login, app):
    w3, wfar = login("w3"), login("wfar")
    a = w3.submit(item("a", person(1))).json["results"][0]
    b = wfar.submit(item("b", person(2), grid_code=GRID_FAR)).json["results"][0]
    assert a["status"] == b["status"] == "accepted", (a, b)
    png = w3.post(f"{API}/submissions/{a['id']}/photos", data=PNG, content_type="image/png")
    jpeg = wfar.post(f"{API}/submissions/{b['id']}/photos", data=JPEG,
                     content_type="image/jpeg")
    assert png.status_code == jpeg.status_code == 201, (png.json, jpeg.json)
    _houses_and_a_release(app)
    moves = _moves(app, login)
    return World(ids={"A": a["id"], "B": b["id"], "missing": MISSING_ID,
                      **{f"move {o}": sid for o, sid in moves.items()}},
                 photos={"A": png.json["sha256"], "B": jpeg.json["sha256"],
                         "missing": png.json["sha256"]},
                 moves={**moves, "missing": MISSING_ID})


def _moves(app, login) -> dict:
    """A person in each of GRID_CODE and GRID_FAR, and an entry from the other grid,
    confirmed there, that would move it: "A" waits for sup, "B" for supfar."""
    from gridcollect import store
    db = app.extensions["gridcollect"].db()
    moves = {}
    for obj, index, home, worker, grid, reviewer in (
            ("A", 5, GRID_CODE, "wfar", GRID_FAR, "supfar"),
            ("B", 6, GRID_FAR, "w3", GRID_CODE, "sup")):
        with store.write(db):
            store.put_records(db, [{
                "record_type": "person", "key": person(index)["id_number"], "grid_code": home,
                "version": 1, "retired": False, "data": person(index),
                "created_at": "2026-11-20T10:00:00.000+08:00",
                "updated_at": "2026-11-20T10:00:00.000+08:00", "seq": 10 + index}])
        [sent] = login(worker).submit(item(f"move{obj}", person(index), grid_code=grid)).json[
            "results"]
        review = login(reviewer).post(f"{API}/submissions/{sent['id']}/review",
                                      json={"action": "confirm"})
        assert review.json["state"] == "awaiting_move", review.json
        moves[obj] = sent["id"]
    return moves


def caller_headers(login, caller) -> dict:
    if caller == "anonymous":
        return {}
    if caller == "forged":  # shaped like a real token, never issued
        return {"Authorization": "Bearer " + secrets.token_urlsafe(32)}
    return login(caller).headers


# --- the table --------------------------------------------------------------------------

@dataclass
class Row:
    rule: str
    method: str
    # caller -> status, or "A B missing" statuses; anonymous and forged default to 401
    expect: dict
    path: Callable  # (world, obj) -> URL
    body: Callable = lambda world, obj, caller: {}  # -> kwargs for the test client
    check: Callable = None  # (response, world, obj, caller, client) -> None, on 2xx
    public: bool = False
    has_object: bool = True

    @property
    def id(self):
        return f"{self.method} {self.rule}"

    def status(self, caller, obj) -> int:
        if caller in ("anonymous", "forged") and caller not in self.expect:
            return 401
        value = self.expect[caller]
        if isinstance(value, int):
            return value
        return int(value.split()[OBJECTS.index(obj)])


def everyone(status):
    return {caller: status for caller in CALLERS}


def only(status, *callers):
    """``status`` for these logged-in callers, 403 for the other roles."""
    table = dict.fromkeys(LOGGED_IN, 403)
    table.update({caller: status for caller in callers})
    return table


def no_object(path):
    return lambda world, obj: path


# checks on success -------------------------------------------------------------------------

def check_me(response, world, obj, caller, client):
    expected = "w3" if caller in ("anonymous", "forged") else caller
    assert response.json["username"] == expected


def check_token(response, world, obj, caller, client):
    assert set(response.json) == {"token", "expires_at", "user"}
    me = client.get(f"{API}/me", headers={"Authorization": f"Bearer {response.json['token']}"})
    assert me.status_code == 200


def check_logout(response, world, obj, caller, client):
    """The revoked token no longer works."""
    me = client.get(f"{API}/me", headers={
        "Authorization": response.request.headers["Authorization"]})
    assert me.status_code == 401 and me.json["error"] == "token_invalid"


GRIDS_SEEN = {"w3": {GRID_CODE}, "w4": {GRID_OTHER}, "sup": {GRID_CODE, GRID_OTHER},
              "supfar": {GRID_FAR}, "analyst": {GRID_CODE, GRID_OTHER, GRID_FAR},
              "admin": {GRID_CODE, GRID_OTHER, GRID_FAR}}
SUBMISSIONS_SEEN = {"w3": {"A", "move B"}, "w4": set(), "sup": {"A", "move B"},
                    "supfar": {"B", "move A"}, "admin": {"A", "B", "move A", "move B"}}


def check_grid_list(response, world, obj, caller, client):
    assert {g["code"] for g in response.json["items"]} == GRIDS_SEEN[caller]


def check_grid(response, world, obj, caller, client):
    assert response.json["code"] == world.grids[obj]


def check_standards(response, world, obj, caller, client):
    assert response.headers["ETag"] and response.json


def check_submission_list(response, world, obj, caller, client):
    assert {s["id"] for s in response.json["items"]} == {
        world.ids[o] for o in SUBMISSIONS_SEEN[caller]}


def check_submission(response, world, obj, caller, client):
    assert response.json["id"] == world.ids[obj]
    assert [p["sha256"] for p in response.json["photos"]] == [world.photos[obj]]


# POST /submissions: the "object" is the grid of the item
# anything else sent here is forbidden; admin may do everything, collecting included
SUBMIT_STATUS = {("w3", "A"): "accepted", ("admin", "A"): "accepted", ("admin", "B"): "accepted"}


def check_submit(response, world, obj, caller, client):
    [result] = response.json["results"]
    assert result["status"] == SUBMIT_STATUS.get((caller, obj), "forbidden")
    assert (result["id"] is None) == (result["status"] == "forbidden")


def check_photo_added(response, world, obj, caller, client):
    assert response.json["content_type"] == "image/png" and response.json["size"] == len(NEW_PNG)


def check_photo_file(response, world, obj, caller, client):
    assert response.data == {"A": PNG, "B": JPEG}[obj]
    assert response.mimetype == {"A": "image/png", "B": "image/jpeg"}[obj]


def check_reviewed(response, world, obj, caller, client):
    assert response.json["id"] == world.ids[obj] and response.json["state"] == "confirmed"
    assert response.json["review"]["by"] == caller


REVIEWABLE = {"sup": {"A"}, "supfar": {"B"}, "admin": {"A", "B"}}


def check_bulk(response, world, obj, caller, client):
    [result] = response.json["results"]
    assert result["id"] == world.ids[obj]
    if obj in REVIEWABLE[caller]:
        assert result == {"id": world.ids[obj], "status": "reviewed", "state": "confirmed"}
    else:  # out of scope answers exactly like missing
        assert result == {"id": world.ids[obj], "status": "not_found", "state": None}


def check_user_list(response, world, obj, caller, client):
    assert {"admin", "w3", "wfar", "sup"} <= {u["username"] for u in response.json["items"]}


def check_user(response, world, obj, caller, client):
    assert response.json["username"] == world.users[obj]


def check_user_created(response, world, obj, caller, client):
    assert response.json["username"] == "newbie" and response.json["role"] == "worker"


def check_revoked(response, world, obj, caller, client):
    assert response.json["revoked"] >= 1  # the world fixture logged w3 and wfar in


def check_unlocked(response, world, obj, caller, client):
    assert response.json["username"] == world.users[obj]
    assert response.json["failures_cleared"] == 0  # nobody in the world mistyped


def check_keys(response, world, obj, caller, client):
    assert response.json == {"items": [], "next": None}  # nobody in the world has a key


def check_key_issued(response, world, obj, caller, client):
    assert "/openrosa/key/" in response.json["url"] and len(response.json["key_id"]) == 12


def check_audit(response, world, obj, caller, client):
    assert {e["action"] for e in response.json["items"]} >= {"submit", "photo_add"}


MOVES_SEEN = {"sup": {"A"}, "supfar": {"B"}, "admin": {"A", "B"}}


def check_move_list(response, world, obj, caller, client):
    assert {m["id"] for m in response.json["items"]} == {
        world.moves[o] for o in MOVES_SEEN[caller]}


def check_move(response, world, obj, caller, client):
    assert response.json["id"] == world.moves[obj] and response.json["state"] == "open"


def check_move_accepted(response, world, obj, caller, client):
    assert response.json["id"] == world.moves[obj]
    assert (response.json["state"], response.json["decided_by"]) == ("accepted", caller)


RECORDS_SEEN = {"w3": {"A"}, "w4": set(), "sup": {"A"}, "supfar": {"B"},
                "analyst": {"A", "B"}, "admin": {"A", "B"}}


def check_record_list(response, world, obj, caller, client):
    assert {r["key"] for r in response.json["items"]} == {
        world.houses[o] for o in RECORDS_SEEN[caller]}


def check_record(response, world, obj, caller, client):
    assert response.json["key"] == world.houses[obj] and response.json["version"] == 1


MONITORED = {"sup": {GRID_CODE, GRID_OTHER}, "supfar": {GRID_FAR},
             "admin": {GRID_CODE, GRID_OTHER, GRID_FAR}}


def check_monitor(response, world, obj, caller, client):
    assert {r["code"] for r in response.json["items"]} == MONITORED[caller]


def check_field_errors(response, world, obj, caller, client):
    assert response.json == {"items": []}  # nobody sent anything invalid


def check_release(response, world, obj, caller, client):
    assert response.json["id"] >= 1 and response.json["counts"]["house"] == 2


def check_release_list(response, world, obj, caller, client):
    assert [r["id"] for r in response.json["items"]] == [1]


def check_dictionary(response, world, obj, caller, client):
    assert response.json["release"] == 1 and "house" in response.json["tables"]


def check_export(response, world, obj, caller, client):
    text = response.data.decode("utf-8-sig")
    assert HOUSES["A"] in text and HOUSES["B"] in text  # both in the analyst's district


def check_openapi(response, world, obj, caller, client):
    assert response.json["openapi"].startswith("3.")


def check_ok(response, world, obj, caller, client):
    assert response.data


ROWS = [
    # --- auth ----------------------------------------------------------------------
    Row("/api/v1/auth/token", "POST", everyone(200), no_object(f"{API}/auth/token"),
        body=lambda world, obj, caller: {"json": {
            "username": "w3" if caller in ("anonymous", "forged") else caller,
            "password": PASSWORD}},
        check=check_token, public=True, has_object=False),
    Row("/api/v1/auth/token", "DELETE", only(204, *LOGGED_IN),
        no_object(f"{API}/auth/token"), check=check_logout, has_object=False),
    Row("/api/v1/me", "GET", only(200, *LOGGED_IN), no_object(f"{API}/me"),
        check=check_me, has_object=False),
    # --- grids ---------------------------------------------------------------------
    Row("/api/v1/grids", "GET", only(200, *LOGGED_IN), no_object(f"{API}/grids"),
        check=check_grid_list, has_object=False),
    Row("/api/v1/grids/<code>", "GET",
        {"w3": "200 404 404", "w4": "404 404 404", "sup": "200 404 404",
         "supfar": "404 200 404", "analyst": "200 200 404", "admin": "200 200 404"},
        lambda world, obj: f"{API}/grids/{world.grids[obj]}", check=check_grid),
    Row("/api/v1/grids/<code>/standards", "GET",
        {"w3": "200 404 404", "w4": "404 404 404", "sup": "200 404 404",
         "supfar": "404 200 404", "analyst": "200 200 404", "admin": "200 200 404"},
        lambda world, obj: f"{API}/grids/{world.grids[obj]}/standards",
        check=check_standards),
    # --- collect -------------------------------------------------------------------
    Row("/api/v1/submissions", "POST", only(200, "w3", "w4", "admin"),
        no_object(f"{API}/submissions"),
        body=lambda world, obj, caller: {"json": {"submissions": [
            item("new", person(3), grid_code=world.grids[obj])]}},
        check=check_submit),
    Row("/api/v1/submissions", "GET", only(200, "w3", "w4", "sup", "supfar", "admin"),
        no_object(f"{API}/submissions"), check=check_submission_list, has_object=False),
    Row("/api/v1/submissions/<id:submission_id>", "GET",
        {"w3": "200 404 404", "w4": "404 404 404", "sup": "200 404 404",
         "supfar": "404 200 404", "analyst": 403, "admin": "200 200 404"},
        lambda world, obj: f"{API}/submissions/{world.ids[obj]}", check=check_submission),
    Row("/api/v1/submissions/<id:submission_id>/photos", "POST",
        {"w3": "201 404 404", "w4": "404 404 404", "sup": 403, "supfar": 403,
         "analyst": 403, "admin": "409 409 404"},  # admin sees them, but they are not its own
        lambda world, obj: f"{API}/submissions/{world.ids[obj]}/photos",
        body=lambda world, obj, caller: {"data": NEW_PNG, "content_type": "image/png"},
        check=check_photo_added),
    Row("/api/v1/submissions/<id:submission_id>/photos/<sha256>", "GET",
        {"w3": "200 404 404", "w4": "404 404 404", "sup": "200 404 404",
         "supfar": "404 200 404", "analyst": 403, "admin": "200 200 404"},
        lambda world, obj: f"{API}/submissions/{world.ids[obj]}/photos/{world.photos[obj]}",
        check=check_photo_file),
    # --- confirm -------------------------------------------------------------------
    Row("/api/v1/submissions/<id:submission_id>/review", "POST",
        {"w3": 403, "w4": 403, "sup": "200 404 404", "supfar": "404 200 404",
         "analyst": 403, "admin": "200 200 404"},
        lambda world, obj: f"{API}/submissions/{world.ids[obj]}/review",
        body=lambda world, obj, caller: {"json": {"action": "confirm", "note": "ok"}},
        check=check_reviewed),
    Row("/api/v1/reviews", "POST", only(200, "sup", "supfar", "admin"),
        no_object(f"{API}/reviews"),
        body=lambda world, obj, caller: {"json": {"ids": [world.ids[obj]],
                                                  "action": "confirm"}},
        check=check_bulk),
    # --- moves between grids ----------------------------------------------------------
    Row("/api/v1/moves", "GET", only(200, "sup", "supfar", "admin"),
        no_object(f"{API}/moves"), check=check_move_list, has_object=False),
    Row("/api/v1/moves/<id:submission_id>", "GET",
        {"w3": 403, "w4": 403, "sup": "200 404 404", "supfar": "404 200 404",
         "analyst": 403, "admin": "200 200 404"},
        lambda world, obj: f"{API}/moves/{world.moves[obj]}", check=check_move),
    Row("/api/v1/moves/<id:submission_id>", "POST",
        {"w3": 403, "w4": 403, "sup": "200 404 404", "supfar": "404 200 404",
         "analyst": 403, "admin": "200 200 404"},
        lambda world, obj: f"{API}/moves/{world.moves[obj]}",
        body=lambda world, obj, caller: {"json": {"action": "accept"}},
        check=check_move_accepted),
    # --- master records ----------------------------------------------------------------
    Row("/api/v1/records/<record_type>", "GET", only(200, *LOGGED_IN),
        no_object(f"{API}/records/house"), check=check_record_list, has_object=False),
    Row("/api/v1/records/<record_type>/<key>", "GET",
        {"w3": "200 404 404", "w4": "404 404 404", "sup": "200 404 404",
         "supfar": "404 200 404", "analyst": "200 200 404", "admin": "200 200 404"},
        lambda world, obj: f"{API}/records/house/{world.houses[obj]}", check=check_record),
    # --- monitor -------------------------------------------------------------------
    Row("/api/v1/monitor/grids", "GET", only(200, "sup", "supfar", "admin"),
        no_object(f"{API}/monitor/grids"), check=check_monitor, has_object=False),
    Row("/api/v1/monitor/fields", "GET", only(200, "sup", "supfar", "admin"),
        no_object(f"{API}/monitor/fields"), check=check_field_errors, has_object=False),
    # --- releases ------------------------------------------------------------------
    Row("/api/v1/releases", "POST", only(201, "analyst", "admin"),
        no_object(f"{API}/releases"),
        body=lambda world, obj, caller: {"json": {"note": "第二次发布"}},
        check=check_release, has_object=False),
    Row("/api/v1/releases", "GET", only(200, "analyst", "admin"),
        no_object(f"{API}/releases"), check=check_release_list, has_object=False),
    Row("/api/v1/releases/<id:release_id>", "GET", only(200, "analyst", "admin"),
        no_object(f"{API}/releases/1"), check=check_release, has_object=False),
    Row("/api/v1/releases/<id:release_id>/dictionary", "GET", only(200, "analyst", "admin"),
        no_object(f"{API}/releases/1/dictionary"), check=check_dictionary, has_object=False),
    Row(f"/api/v1/releases/<id:release_id>/tables/<any({', '.join(RECORD_TYPES)}):record_type>"
        f".<any(csv, json, xlsx):fmt>", "GET", only(200, "analyst", "admin"),
        no_object(f"{API}/releases/1/tables/house.csv"), check=check_export,
        has_object=False),
    # --- users (admin) ---------------------------------------------------------------
    Row("/api/v1/users", "GET", only(200, "admin"), no_object(f"{API}/users"),
        check=check_user_list, has_object=False),
    Row("/api/v1/users", "POST", only(201, "admin"), no_object(f"{API}/users"),
        body=lambda world, obj, caller: {"json": {
            "username": "newbie", "role": "worker", "scope": [GRID_CODE],
            "password": "a long password"}},
        check=check_user_created, has_object=False),
    Row("/api/v1/users/<username>", "GET", only("200 200 404", "admin"),
        lambda world, obj: f"{API}/users/{world.users[obj]}", check=check_user),
    Row("/api/v1/users/<username>", "PATCH", only("200 200 404", "admin"),
        lambda world, obj: f"{API}/users/{world.users[obj]}",
        body=lambda world, obj, caller: {"json": {"unmasked": True}}, check=check_user),
    Row("/api/v1/users/<username>/revoke-tokens", "POST", only("200 200 404", "admin"),
        lambda world, obj: f"{API}/users/{world.users[obj]}/revoke-tokens",
        check=check_revoked),
    Row("/api/v1/users/<username>/unlock", "POST", only("200 200 404", "admin"),
        lambda world, obj: f"{API}/users/{world.users[obj]}/unlock",
        check=check_unlocked),
    Row("/api/v1/users/<username>/openrosa-keys", "GET", only("200 200 404", "admin"),
        lambda world, obj: f"{API}/users/{world.users[obj]}/openrosa-keys",
        check=check_keys),
    Row("/api/v1/users/<username>/openrosa-keys", "POST", only("201 201 404", "admin"),
        lambda world, obj: f"{API}/users/{world.users[obj]}/openrosa-keys",
        body=lambda world, obj, caller: {"json": {"days": 1}}, check=check_key_issued),
    Row("/api/v1/users/<username>/openrosa-keys/<key_id>", "DELETE",
        only("404 404 404", "admin"),  # a key nobody has: every caller learns nothing
        lambda world, obj: f"{API}/users/{world.users[obj]}/openrosa-keys/0123456789ab"),
    # --- audit (admin) ---------------------------------------------------------------
    Row("/api/v1/audit", "GET", only(200, "admin"), no_object(f"{API}/audit"),
        check=check_audit, has_object=False),
    # --- documentation: public, a token (even a forged one) changes nothing ---------
    Row("/api/v1/openapi.json", "GET", everyone(200), no_object(f"{API}/openapi.json"),
        check=check_openapi, public=True, has_object=False),
    Row("/api/v1/docs", "GET", everyone(200), no_object(f"{API}/docs"), check=check_ok,
        public=True, has_object=False),
    Row("/api/v1/docs/", "GET", everyone(200), no_object(f"{API}/docs/"), check=check_ok,
        public=True, has_object=False),
    Row("/api/v1/docs/assets/<path:filename>", "GET", everyone(200),
        no_object(f"{API}/docs/assets/swagger-ui.css"), check=check_ok, public=True,
        has_object=False),
]


def cases():
    for row in ROWS:
        for caller in CALLERS:
            for obj in (OBJECTS if row.has_object else ("-",)):
                yield pytest.param(row, caller, obj, id=f"{row.id}|{caller}|{obj}")


def test_the_table_covers_every_endpoint(app):
    served = {(rule.rule, method) for rule in app.url_map.iter_rules()
              if rule.rule.startswith(API)
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    table = [(row.rule, row.method) for row in ROWS]
    assert len(table) == len(set(table)), "a row appears twice"
    assert served - set(table) == set(), "endpoints without a row in ROWS"
    assert set(table) - served == set(), "rows for endpoints the app does not serve"


def test_the_table_is_complete():
    for row in ROWS:
        for caller in CALLERS:
            for obj in (OBJECTS if row.has_object else ("-",)):
                assert row.status(caller, "A" if obj == "-" else obj) in (
                    200, 201, 204, 401, 403, 404, 409), (row.id, caller, obj)


def request(client, login, row, world, caller, obj):
    kwargs = row.body(world, obj, caller)
    headers = caller_headers(login, caller)
    return getattr(client, row.method.lower())(row.path(world, obj), headers=headers, **kwargs)


def assert_problem(response, status, error):
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    body = response.json
    assert body["code"] == status and body["status"] == HTTPStatus(status).phrase
    assert body["error"] == error and PROBLEMS[error][0] == status
    assert set(body) <= {"code", "status", "message", "error", "errors"}
    assert " / " in body["message"]


@pytest.mark.parametrize("row, caller, obj", list(cases()))
def test_authorization(client, login, world, db, row, caller, obj):
    expected = row.status(caller, "A" if obj == "-" else obj)
    response = request(client, login, row, world, caller, obj)
    response.get_data()  # buffer streamed files (photos, docs assets), then let go of them
    response.close()
    assert response.status_code == expected, (
        f"{row.id} as {caller} on {obj}: {response.status_code} "
        f"{response.get_data(as_text=True)[:300]}")
    if expected == 401:
        error = "auth_required" if caller == "anonymous" else "token_invalid"
        assert_problem(response, 401, error)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    elif expected == 403:
        assert_problem(response, 403, "role_forbidden")
        assert USERS_ROLE[caller] in response.json["message"]
    elif expected == 404:
        assert_problem(response, 404, "not_found")
    elif expected == 409:  # allowed, and in scope, but not in a state to do it
        assert_problem(response, 409, "photo_closed")
    elif row.check is not None:
        row.check(response, world, obj, caller, client)
    if expected >= 400 and obj in ("A", "B") and row.status(caller, "missing") == expected:
        # refused the same way as something that does not exist: nothing to probe
        missing = request(client, login, row, world, caller, "missing")
        missing.get_data()
        missing.close()
        assert missing.status_code == expected
        assert response.data == missing.data
        assert sorted(response.headers.keys()) == sorted(missing.headers.keys())
    if expected >= 400 and row.method != "GET":
        # a refused change changed nothing
        states = dict(db.execute("SELECT id, state FROM submissions").fetchall())
        assert states == {world.ids["A"]: "pending", world.ids["B"]: "pending",
                          world.moves["A"]: "awaiting_move", world.moves["B"]: "awaiting_move"}
        assert db.execute("SELECT count(*) FROM photos").fetchone()[0] == 2
