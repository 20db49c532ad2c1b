"""Schemathesis against the app's own OpenAPI document, as every role.

For each caller (admin, supervisor ``sup``, worker ``w3``, analyst, and nobody at
all) a fresh database is filled with real objects — submissions pending,
confirmed, returned, rejected, in conflict, retired and correcting another, with
photos; master records of the four types in two streets; two ready releases —
and every operation of ``/api/v1/openapi.json`` is called with cases schemathesis
generates from the document, positive and negative. Half of the cases have
their path (and some their query or body) swapped for real ids, keys, user
names, ETags, images or submission items, so the 2xx, 304 and 409 paths of the
handlers run, not only their 404s and 422s.

Every response must: not be a 5xx (``not_a_server_error``); have a documented
status (``status_code_conformance``), content type (``content_type_conformance``),
headers (``response_headers_conformance``) and body
(``response_schema_conformance``). Failures are collected, not raised, so one
run reports every distinct failure with a request to reproduce it.

What the authenticated runs leave out, and why:
* ``DELETE /auth/token`` (log out) is sent, but each time with a throwaway token
  of the caller, minted for that case: with the caller's own token every later
  case would be a 401.
* As admin, ``PATCH /users/admin`` and ``POST /users/admin/revoke-tokens`` are
  never sent (a generated ``admin`` there is replaced by ``w4``): a new password,
  a lost role or disabling would end the admin's own session and, the password
  being unknown, the run. For the other roles these stay in: they answer 403.
* Logging in is throttled per user name and per address after failed attempts,
  which the fuzzer makes on purpose (``POST /auth/token`` with wrong passwords,
  for ``w4`` among others). The callers' tokens are therefore issued before the
  fuzzing and throwaway tokens are written straight into the token table, so a
  429 the fuzzer provokes (a documented answer) cannot stop the run.

``GRIDCOLLECT_SCHEMATHESIS_EXAMPLES`` sets the examples per operation, mode and
caller (default 40: about 9,500 cases in all, some 2 minutes).
"""
import datetime
import os
import secrets

import pytest
import schemathesis
from conftest import (FAST_HASH, GRID_CODE, GRID_FAR, GRID_OTHER, PASSWORD, event, item,
                      person, seed)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (content_type_conformance, not_a_server_error,
                                 response_headers_conformance, response_schema_conformance,
                                 status_code_conformance)
from schemathesis.core.failures import FailureGroup

from gridcollect.standards import RECORD_TYPES

pytestmark = pytest.mark.slow

API = "/api/v1"
EXAMPLES = int(os.environ.get("GRIDCOLLECT_SCHEMATHESIS_EXAMPLES", "40"))
CALLERS = ("admin", "sup", "w3", "analyst", "anonymous")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
MISSING_ID = 987654
MISSING_GRID = "420502001002999"
OWN_SESSION_KILLERS = {"PATCH /api/v1/users/{username}",
                       "POST /api/v1/users/{username}/revoke-tokens"}
LOGOUT = "DELETE /api/v1/auth/token"
# the caller's environ for its own logins: not the address the fuzzer's failures throttle
FIXTURE_ADDRESS = {"REMOTE_ADDR": "10.0.0.99"}

PNG = (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00\x00\x00\x01\x00\x00\x00\x01"
       + b"\x08\x02\x00\x00\x00" + b"\x90wS\xde" + b"\x00\x00\x00\x00IEND\xaeB`\x82")
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"

HOUSE_A = f"{GRID_CODE}-012-01-0302"
HOUSE_RETIRED = f"{GRID_CODE}-012-01-0402"
HOUSE_FAR = f"{GRID_FAR}-001-01-0101"
USCC = "91330100716105852F"


def house(code=HOUSE_A, **changes):
    return {"house_code": code, "address": "湖北省宜昌市西陵区夷陵大道 12 号", "usage": "2",
            **changes}


def organization(**changes):
    return {"uscc": USCC, "name": "宜昌某某商贸有限公司", "address": "湖北省宜昌市西陵区东山大道 1 号",
            **changes}


# --- the world: real objects for the cases to reach -------------------------------------

def _login(client, username):
    response = client.post(f"{API}/auth/token", json={"username": username,
                                                      "password": PASSWORD},
                           environ_base=FIXTURE_ADDRESS)
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['token']}"}


def build_world(client) -> dict:
    """Submissions in every state, records of every type, photos and two releases;
    returns the real values path parameters, queries and bodies are drawn from."""
    tokens = {user: _login(client, user)
              for user in ("w3", "w4", "wfar", "sup", "supfar", "analyst", "admin")}

    def send(user, client_id, data, record_type="person", grid_code=GRID_CODE, **more):
        body = {"submissions": [item(client_id, data, record_type=record_type,
                                     grid_code=grid_code, **more)]}
        response = client.post(f"{API}/submissions", json=body, headers=tokens[user])
        [result] = response.json["results"]
        assert result["status"] == "accepted", result
        return result["id"]

    def review(user, sid, action, **more):
        response = client.post(f"{API}/submissions/{sid}/review", headers=tokens[user],
                               json={"action": action, **more})
        assert response.status_code == 200, response.json
        return response.json["state"]

    def photo(user, sid, content, content_type):
        response = client.post(f"{API}/submissions/{sid}/photos", data=content,
                               content_type=content_type, headers=tokens[user])
        assert response.status_code == 201, response.json
        return response.json["sha256"]

    ids, photos = {}, []
    # w3, in GRID_CODE: one of each record type confirmed, then the other states
    ids["person"] = send("w3", "p1", person(1))
    review("sup", ids["person"], "confirm")
    ids["person_v2"] = send("w3", "p1b", person(1, residence_type="2"), base_version=1)
    review("sup", ids["person_v2"], "confirm")
    ids["conflict"] = send("w3", "p1c", person(1, residence_type="4"), base_version=1)
    assert review("sup", ids["conflict"], "confirm") == "conflict"
    ids["house"] = send("w3", "h1", house(), record_type="house")
    ids["organization"] = send("w3", "o1", organization(), record_type="organization")
    ids["event"] = send("w3", "e1", event(urgency="2"), record_type="event")
    ids["house_old"] = send("w3", "h2", house(HOUSE_RETIRED, usage="3"), record_type="house")
    for name in ("house", "organization", "event", "house_old"):
        review("sup", ids[name], "confirm")
    ids["retire"] = send("w3", "h2r", {"house_code": HOUSE_RETIRED}, record_type="house",
                         action="retire")
    review("sup", ids["retire"], "confirm")
    ids["pending"] = send("w3", "p2", person(2, special_groups=["独居老人"]))
    photos.append((ids["pending"], photo("w3", ids["pending"], PNG, "image/png")))
    photos.append((ids["pending"], photo("w3", ids["pending"], JPEG, "image/jpeg")))
    ids["returned"] = send("w3", "p3", person(3, phone="13800000000"))
    review("sup", ids["returned"], "return", note="联系电话请与本人核实")
    ids["correction"] = send("w3", "p3b", person(3, phone="13912345678"))  # replaces it
    ids["rejected"] = send("w3", "p4", person(4))
    review("sup", ids["rejected"], "reject", note="重复录入")
    # more pending work for the reviewers and photos (the fuzzer reviews some away)
    pending = [ids["pending"], ids["correction"]]
    pending += [send("w3", f"q{i}", person(i)) for i in range(30, 36)]
    invalid = client.post(f"{API}/submissions", headers=tokens["w3"], json={"submissions": [
        item("bad", person(5, sex="2", birth_date="1980-02-30"))]})
    assert invalid.json["results"][0]["status"] == "invalid"
    # w4, in the other grid of the community; wfar, in another street
    ids["other"] = send("w4", "p6", person(6), grid_code=GRID_OTHER)
    pending += [ids["other"], send("w4", "p36", person(36), grid_code=GRID_OTHER)]
    photos.append((ids["other"], photo("w4", ids["other"], JPEG, "image/jpeg")))
    ids["far"] = send("wfar", "p7", person(7), grid_code=GRID_FAR)
    photos.append((ids["far"], photo("wfar", ids["far"], PNG, "image/png")))
    ids["far_house"] = send("wfar", "h3", house(HOUSE_FAR), record_type="house",
                            grid_code=GRID_FAR)
    ids["far_event"] = send("wfar", "e2", event(location={"lat": 30.70, "lon": 111.31}),
                            record_type="event", grid_code=GRID_FAR)
    ids["far_person"] = send("wfar", "p8", person(8), grid_code=GRID_FAR)
    for name in ("far_house", "far_event", "far_person"):
        review("supfar", ids[name], "confirm")
    # two ready releases
    releases = []
    for user in ("analyst", "admin"):
        response = client.post(f"{API}/releases", json={"note": f"{user} 发布"},
                               headers=tokens[user])
        assert response.status_code == 201, response.json
        releases.append(response.json["id"])
    etags = {}
    for code in (GRID_CODE, GRID_FAR):
        etags[code] = client.get(f"{API}/grids/{code}/standards",
                                 headers=tokens["admin"]).headers["ETag"]
    records = [("person", person(1)["id_number"]), ("person", person(8)["id_number"]),
               ("house", HOUSE_A), ("house", HOUSE_RETIRED), ("house", HOUSE_FAR),
               ("organization", USCC), ("event", str(ids["event"])),
               ("event", str(ids["far_event"])), ("person", person(9)["id_number"]),
               ("house", "not-a-key")]
    # and the ids the fuzzer's own accepted submissions will get
    submissions = list(range(1, max(ids.values()) + 16)) + [MISSING_ID]
    return {"tokens": tokens, "submissions": submissions,
            "pending": pending, "returned": ids["returned"], "photos": photos,
            "records": records, "releases": releases + [MISSING_ID], "etags": etags}


def mint_token(db, username) -> dict:
    """A token of ``username`` written straight into the token table: logging in may
    be throttled by the fuzzer's own failed logins, which is not what is tested here."""
    from gridcollect import accounts, clock, store
    token = secrets.token_urlsafe(32)
    now = clock.now()
    with store.write(db):
        store.insert_token(db, accounts.token_hash(token), username, clock.iso(now),
                           clock.iso(now + datetime.timedelta(hours=1)))
    return {"Authorization": f"Bearer {token}"}


# --- real values per operation ------------------------------------------------------------

USERS = ("w3", "w4", "wfar", "sup", "supfar", "analyst", "admin", "nobody")


def real_values(label: str, world: dict, caller: str):
    """A strategy of ``{attribute: value}`` to set on a generated case, or None."""
    # half of them pending (the fuzzer reviews them away), half any id at all
    subs = st.one_of(st.sampled_from(world["pending"]), st.sampled_from(world["submissions"]))
    path = None
    if label.startswith("GET /api/v1/grids/{code}"):
        codes = [GRID_CODE, GRID_OTHER, GRID_FAR, MISSING_GRID, "420502001"]
        path = st.fixed_dictionaries({"code": st.sampled_from(codes)})
    if label == "GET /api/v1/grids/{code}/standards":
        etag = st.sampled_from(sorted(world["etags"].values()) + ['"0000"', "*"])
        return st.fixed_dictionaries({"path_parameters": path, "headers": st.one_of(
            st.just({}), etag.map(lambda tag: {"If-None-Match": tag}))})
    if label == "GET /api/v1/submissions/{submission_id}":
        path = st.fixed_dictionaries({"submission_id": subs})
    if label == "POST /api/v1/submissions/{submission_id}/review":
        return st.fixed_dictionaries({
            "path_parameters": st.fixed_dictionaries({"submission_id": subs}),
            "body": st.fixed_dictionaries({"action": st.sampled_from(
                ["confirm", "reject", "return"])}, optional={
                "note": st.sampled_from(["请核实", "", "x" * 2000]), "force": st.booleans()})})
    if label == "POST /api/v1/submissions/{submission_id}/photos":
        image = st.sampled_from([(PNG, "image/png"), (JPEG, "image/jpeg"),
                                 (PNG, "image/jpeg"), (PNG[:-5], "image/png")])
        return st.tuples(subs, image).map(lambda t: {
            "path_parameters": {"submission_id": t[0]}, "body": t[1][0],
            "media_type": t[1][1]})
    if label == "GET /api/v1/submissions/{submission_id}/photos/{sha256}":
        pairs = world["photos"] + [(sid, world["photos"][-1][1]) for sid, _ in world["photos"]]
        path = st.sampled_from(pairs).map(lambda p: {"submission_id": p[0], "sha256": p[1]})
    if label == "GET /api/v1/submissions":
        return st.fixed_dictionaries({"query": st.fixed_dictionaries({}, optional={
            "state": st.sampled_from(["pending", "confirmed", "returned", "rejected",
                                      "conflict"]),
            "grid": st.sampled_from([GRID_CODE, GRID_FAR, "420502001"]),
            "record_type": st.sampled_from(RECORD_TYPES),
            "since": st.just("2020-01-01T00:00:00+08:00"), "limit": st.integers(1, 3)})})
    if label == "GET /api/v1/records/{record_type}":
        filters = st.sampled_from([{}, {"usage": "2"}, {"usage": ["2", "3"]},
                                   {"special_groups": "独居老人"}, {"retired": "true"},
                                   {"grid": GRID_CODE}, {"event_type": "02"},
                                   {"id_number": person(1)["id_number"]}, {"limit": "1"},
                                   {"changed_since": "2020-01-01T00:00:00+08:00"}])
        return st.fixed_dictionaries({
            "path_parameters": st.fixed_dictionaries(
                {"record_type": st.sampled_from(RECORD_TYPES + ("nothing",))}),
            "query": filters})
    if label == "GET /api/v1/records/{record_type}/{key}":
        path = st.sampled_from(world["records"]).map(
            lambda r: {"record_type": r[0], "key": r[1]})
    if label.startswith("GET /api/v1/releases/{release_id}"):
        releases = st.sampled_from(world["releases"])
        path = st.fixed_dictionaries({"release_id": releases})
        if label.endswith("{fmt}"):
            path = st.fixed_dictionaries({
                "release_id": releases, "record_type": st.sampled_from(RECORD_TYPES),
                "fmt": st.sampled_from(["csv", "json", "xlsx"])})
    if label in ("GET /api/v1/users/{username}", *OWN_SESSION_KILLERS):
        users = [u for u in USERS if not (caller == "admin" and label in OWN_SESSION_KILLERS
                                          and u == "admin")]
        path = st.fixed_dictionaries({"username": st.sampled_from(users)})
    if label == "POST /api/v1/auth/token":
        return st.fixed_dictionaries({"body": st.fixed_dictionaries({
            "username": st.sampled_from(["w4", "supfar", "nobody", "W4", "w4 "]),
            "password": st.sampled_from([PASSWORD, "wrong password"])})})
    if label == "POST /api/v1/submissions":
        return st.fixed_dictionaries({"body": submission_batches(world)})
    if label == "POST /api/v1/reviews":
        return st.fixed_dictionaries({"body": st.fixed_dictionaries(
            {"ids": st.lists(subs, min_size=1, max_size=4),
             "action": st.sampled_from(["confirm", "reject", "return"])},
            optional={"note": st.sampled_from(["请核实", ""]), "force": st.booleans()})})
    if label == "POST /api/v1/users":
        return st.fixed_dictionaries({"body": st.fixed_dictionaries({
            "username": st.sampled_from(["newbie", "w3", "x" * 64, "a.b-c_d"]),
            "role": st.sampled_from(["worker", "supervisor", "analyst", "admin"]),
            "scope": st.sampled_from([[GRID_CODE], ["420502"], [], ["42050200100"]]),
            "password": st.sampled_from(["a long password", "short"])})})
    if path is None:
        return None
    return st.fixed_dictionaries({"path_parameters": path})


def submission_batches(world):
    """Batches of real items: new, repeated (duplicate), corrections, retirements,
    other grids, and a stale base version."""
    index = st.integers(10, 14)
    items = st.one_of(
        index.map(lambda i: item(f"n{i}", person(i))),
        index.map(lambda i: item(f"e{i}", event(description=f"事件描述第{i}号"),
                                 record_type="event")),
        st.just(item("h9", house(f"{GRID_CODE}-020-01-0101"), record_type="house")),
        st.just(item("o9", organization(employees=12), record_type="organization")),
        st.just(item("fix", person(3, phone="13712345678"), replaces=world["returned"])),
        st.just(item("ret", {"id_number": person(1)["id_number"]}, action="retire")),
        st.just(item("far", person(20), grid_code=GRID_FAR)),
        st.just(item("stale", person(1, residence_type="3"), base_version=1)),
        st.just(item("bad", person(21, birth_date="2099-01-01"))))
    return st.lists(items, min_size=1, max_size=3).map(lambda batch: {"submissions": batch})


def cases(operation, mode, world, caller):
    generated = operation.as_strategy(generation_mode=mode)
    real = real_values(operation.label, world, caller)
    if real is None:
        return generated

    def apply(pair):
        case, values = pair
        for name, value in values.items():
            if name in ("path_parameters", "query", "headers"):
                setattr(case, name, {**(getattr(case, name) or {}), **value})
            else:
                setattr(case, name, value)
        return case

    return st.one_of(generated, st.tuples(generated, real).map(apply))


# --- the run --------------------------------------------------------------------------------

def describe(case, response) -> str:
    request = response.request
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "backslashreplace")
    headers = {k: v for k, v in request.headers.items()
               if k in ("Authorization", "Content-Type", "If-None-Match")}
    return (f"{request.method} {request.url}\n  headers: {headers}\n  body: {str(body)[:400]}\n"
            f"  -> {response.status_code} {response.headers.get('content-type')} "
            f"{response.content[:400]!r}")


@pytest.mark.parametrize("caller", CALLERS)
def test_every_operation_conforms(caller, tmp_path, figures):
    from gridcollect.app import create_app
    app = create_app({"DATABASE": str(tmp_path / "st.db"), "SCRYPT_N": FAST_HASH,
                      "TESTING": True})
    db = app.extensions["gridcollect"].db()
    seed(db)
    client = app.test_client()
    world = build_world(client)
    own = {} if caller == "anonymous" else world["tokens"][caller]
    schema = schemathesis.openapi.from_wsgi(f"{API}/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 28

    failures = {}  # (operation, failure title) -> first reproducer
    counts = {"cases": 0, "5xx": 0, "2xx": 0}
    statuses = {}

    def run_case(case):
        label = case.operation.label
        if caller == "admin" and label in OWN_SESSION_KILLERS \
                and case.path_parameters.get("username") == "admin":
            case.path_parameters = {**case.path_parameters, "username": "w4"}
        headers = dict(own)
        if label == LOGOUT and caller != "anonymous":
            headers = mint_token(db, caller)  # log out a throwaway session, not the run's
        # in-process WSGI calls are not decoded the way an HTTP client decodes gzip
        # (tests/test_newcomer.py checks gzip over real HTTP)
        headers["Accept-Encoding"] = "identity"
        counts["cases"] += 1
        try:
            response = case.call(headers=headers, buffered=True)  # closes sent files
        except Exception as exc:  # the app raised instead of answering: a 500 for a client
            counts["5xx"] += 1
            failures.setdefault((label, f"exception {type(exc).__name__}", 500),
                                f"{case!r}\n  raised {exc!r}")
            return
        statuses[(label, response.status_code)] = statuses.get(
            (label, response.status_code), 0) + 1
        if response.status_code >= 500:
            counts["5xx"] += 1
        elif response.status_code < 300:
            counts["2xx"] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                failures.setdefault((label, failure.title, response.status_code),
                                    f"{failure.title}: {str(failure.message)[:600]}\n"
                                    + describe(case, response))
        if caller != "anonymous" and label in OWN_SESSION_KILLERS | {LOGOUT}:
            me = client.get(f"{API}/me", headers=own)
            assert me.status_code == 200, f"{label} ended the run's own session: {case!r}"

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            examples = EXAMPLES if caller != "anonymous" else max(5, EXAMPLES // 4)

            @settings(max_examples=examples, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                             HealthCheck.data_too_large,
                                             HealthCheck.large_base_example])
            @given(case=cases(operation, mode, world, caller))
            def fuzz(case):
                run_case(case)

            fuzz()

    figures("schemathesis cases", counts["cases"])
    figures("schemathesis 2xx answers", counts["2xx"])
    figures("5xx seen", counts["5xx"])
    if os.environ.get("GRIDCOLLECT_SCHEMATHESIS_STATUSES"):
        for (label, status), n in sorted(statuses.items()):
            print(f"{caller:9} {label:62} {status} x{n}")
    report = "\n\n".join(f"[{label}] {title} ({status})\n{text}"
                         for (label, title, status), text in failures.items())
    assert not failures, f"{len(failures)} distinct failures as {caller}:\n\n{report}"
    assert counts["5xx"] == 0
