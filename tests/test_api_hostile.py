"""Hostile input over HTTP: a precise 4xx (or the documented per-item status) in the
one error shape, nothing stored, and a server that still answers afterwards."""
import hashlib
import json
import secrets
from http import HTTPStatus

import pytest
from conftest import GRID_CODE, GRID_FAR, event, id_number, item, person

from gridcollect.errors import PROBLEMS

API = "/api/v1"
SUBMISSIONS = f"{API}/submissions"
MIB = 1024 * 1024
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
SURROGATE = b"\xed\xa0\x80"  # U+D800 encoded as if it were a character (CESU-8 style)


# --- helpers ------------------------------------------------------------------------

def count(db, table="submissions"):
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def assert_problem(response, status, error):
    """The one error shape, with this status and problem code."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    body = response.json
    assert set(body) >= {"code", "status", "message", "error"}
    assert set(body) <= {"code", "status", "message", "error", "errors"}
    assert body["code"] == status and body["status"] == HTTPStatus(status).phrase
    assert body["error"] == error and PROBLEMS[error][0] == status
    zh, en = body["message"].split(" / ", 1)
    assert zh == PROBLEMS[error][1] and en
    return body


def assert_alive(login):
    """The server still answers an ordinary request."""
    me = login("w3").get(f"{API}/me")
    assert me.status_code == 200 and me.json["username"] == "w3"


def strict_json(response):
    """The body parsed as strict JSON (no NaN or Infinity)."""
    def refuse(constant):
        raise AssertionError(f"{constant} in a JSON answer")
    return json.loads(response.get_data(as_text=True), parse_constant=refuse)


def batch(*items) -> bytes:
    return json.dumps({"submissions": list(items)}, ensure_ascii=False).encode("utf-8")


def raw_batch(data_json: str, record_type="person", client_id="raw") -> bytes:
    """A batch of one item whose ``data`` is the given JSON text, byte for byte."""
    envelope = item(client_id, {}, record_type)
    text = json.dumps({"submissions": [envelope]}, ensure_ascii=False)
    return text.replace('"data": {}', f'"data": {data_json}').encode("utf-8")


@pytest.fixture
def w3(login):
    return login("w3")


def post_body(caller, body: bytes, content_type="application/json", path=SUBMISSIONS):
    return caller.post(path, data=body, content_type=content_type)


# --- bodies that are not (acceptable) JSON ----------------------------------------------

BROKEN_BODIES = {
    # id: (body factory, status, problem, a phrase of the English message or None)
    "empty": (lambda: b"", 400, "bad_json", None),
    "null": (lambda: b"null", 422, "invalid_request", None),
    "a list": (lambda: b"[]", 422, "invalid_request", None),
    "a string": (lambda: b'"submissions"', 422, "invalid_request", None),
    "a number": (lambda: b"42", 422, "invalid_request", None),
    "no submissions key": (lambda: b'{"items": []}', 422, "invalid_request", None),
    "submissions null": (lambda: b'{"submissions": null}', 422, "invalid_request", None),
    "cut off": (lambda: batch(item("a"))[:-5], 400, "bad_json", None),
    "trailing garbage": (lambda: batch(item("a")) + b"}", 400, "bad_json", None),
    "two documents": (lambda: batch(item("a")) + batch(item("b")), 400, "bad_json", None),
    "single quotes": (lambda: b"{'submissions': []}", 400, "bad_json", None),
    "raw NUL in a string": (lambda: batch(item("a")).replace(b"\xe5\xbc\xa0", b"\x00"), 400,
                            "bad_json", None),
    "Latin-1": (lambda: batch(item("a", person(1, name="José"))).replace(
        "é".encode(), "é".encode("latin-1")), 400, "bad_json", "not UTF-8"),
    "stray continuation byte": (lambda: batch(item("a")).replace(b"\xe5\xbc\xa0", b"\x80"),
                                400, "bad_json", "not UTF-8"),
    "100,000 [": (lambda: b"[" * 100_000, 400, "bad_json", "nested too deeply"),
    "100,000 {": (lambda: b'{"a":' * 100_000, 400, "bad_json", "nested too deeply"),
    "deep inside data": (lambda: raw_batch(b"[".decode() * 100_000), 400, "bad_json",
                         "nested too deeply"),
    "integer of 4301 digits": (lambda: batch(item("a")).replace(
        b'"action"', b'"base_version": 1' + b"0" * 4300 + b', "action"'), 400, "bad_json",
        "4300"),
    "escaped lone surrogate in client_id": (lambda: batch(item("aSURR")).replace(
        b"SURR", b"\\ud800"), 400, "bad_json", "surrogate"),
    "escaped lone surrogate in data": (lambda: batch(item("a", person(1, name="SURR")))
                                       .replace(b"SURR", b"\\udfff"), 400, "bad_json",
                                       "surrogate"),
    "escaped lone surrogate in a key": (lambda: batch(item("a", {**person(1), "SURR": 1}))
                                        .replace(b"SURR", b"\\ud83d"), 400, "bad_json",
                                        "surrogate"),
    "over 8 MiB": (lambda: batch(item("a", person(1, name="x" * (8 * MIB)))), 413,
                   "too_large", "8388608"),
    "501 items": (lambda: batch(*[item(f"i{n}", person(n)) for n in range(501)]), 413,
                  "too_many_items", "501 items"),
    "501 junk items": (lambda: json.dumps({"submissions": [0] * 501}).encode(), 413,
                       "too_many_items", "501 items"),
}


@pytest.mark.parametrize("case", BROKEN_BODIES, ids=str)
def test_a_broken_body_is_refused_whole(login, db, w3, case):
    make, status, error, phrase = BROKEN_BODIES[case]
    response = post_body(w3, make())
    body = assert_problem(response, status, error)
    if phrase:
        assert phrase in body["message"]
    if error == "invalid_request":
        assert body["errors"]
    assert count(db) == 0
    assert_alive(login)


def test_a_paired_surrogate_is_an_ordinary_character(db, w3):
    """Only lone surrogates are refused: an escaped pair is one character (here an emoji)."""
    body = batch(item("emoji", person(1, name="张SURR"))).replace(b"SURR", b"\\ud83d\\ude00")
    response = post_body(w3, body)
    assert response.status_code == 200
    assert response.json["results"][0]["status"] == "accepted"
    assert json.loads(db.execute("SELECT data FROM submissions").fetchone()[0])["name"] == \
        "张\U0001F600"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_body_not_in_utf8_is_bad_json(login, db, w3, encoding):
    body = json.dumps({"submissions": [item("u", person(1))]}, ensure_ascii=False)
    response = post_body(w3, body.encode(encoding))
    assert_problem(response, 400, "bad_json")
    assert count(db) == 0
    assert_alive(login)


# surrogates written straight into the UTF-8 (not as \u escapes) are decoded by
# json.loads with "surrogatepass", and the escaped-surrogate pre-check never sees them
RAW_SURROGATES = {
    "client_id": ("w3", SUBMISSIONS, lambda: batch(item("aSURR")).replace(b"SURR", SURROGATE)),
    "data key": ("w3", SUBMISSIONS, lambda: batch(item("a", {**person(1), "SURR": 1}))
                 .replace(b"SURR", SURROGATE)),
    "data value": ("w3", SUBMISSIONS, lambda: batch(item("a", person(1, name="张SURR")))
                   .replace(b"SURR", SURROGATE)),
    "review note": ("sup", f"{API}/reviews", lambda: json.dumps(
        {"ids": [1], "action": "return", "note": "SURR"}).encode().replace(b"SURR", SURROGATE)),
    "login username": (None, f"{API}/auth/token", lambda: json.dumps(
        {"username": "SURR", "password": "whatever1"}).encode().replace(b"SURR", SURROGATE)),
}


@pytest.mark.parametrize("case", RAW_SURROGATES, ids=str)
def test_a_raw_lone_surrogate_is_bad_json(client, login, db, case):
    who, path, make = RAW_SURROGATES[case]
    login("w3").submit(item("pending", person(9)))
    caller = login(who) if who else client
    response = caller.post(path, data=make(), content_type="application/json")
    assert_problem(response, 400, "bad_json")
    assert db.execute("SELECT state FROM submissions").fetchall() == [("pending",)]
    assert_alive(login)


# --- content types ----------------------------------------------------------------------

@pytest.mark.parametrize("content_type", [
    "text/plain", "text/json", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz", "application/xml", "image/png", "image/jpeg",
    "application/octet-stream", "application/jsonx", "application/json-patch+json", None,
])
def test_a_json_endpoint_refuses_other_content_types(login, db, w3, content_type):
    response = post_body(w3, batch(item("a")), content_type=content_type)
    body = assert_problem(response, 415, "unsupported_media_type")
    assert "application/json" in body["message"]
    assert count(db) == 0
    assert_alive(login)


@pytest.mark.parametrize("who, method, path", [
    (None, "post", f"{API}/auth/token"),
    ("sup", "post", f"{API}/reviews"),
    ("sup", "post", f"{API}/submissions/1/review"),
    ("admin", "post", f"{API}/users"),
    ("admin", "patch", f"{API}/users/w3"),
])
def test_every_json_endpoint_refuses_form_bodies(client, login, db, who, method, path):
    login("w3").submit(item("pending", person(9)))
    caller = login(who) if who else client
    body = b"username=admin&password=x&action=confirm&ids=1&role=admin"
    response = getattr(caller, method)(path, data=body,
                                       content_type="application/x-www-form-urlencoded")
    assert_problem(response, 415, "unsupported_media_type")
    assert db.execute("SELECT state FROM submissions").fetchall() == [("pending",)]
    assert db.execute("SELECT role FROM users WHERE username = 'w3'").fetchone()[0] == "worker"
    assert_alive(login)


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "image/gif"])
def test_the_photo_endpoint_wants_an_image(login, db, w3, content_type):
    sid = w3.submit(item("ph")).json["results"][0]["id"]
    response = w3.post(f"{SUBMISSIONS}/{sid}/photos", data=b'{"x": 1}',
                       content_type=content_type)
    body = assert_problem(response, 415, "unsupported_media_type")
    assert "image/jpeg or image/png" in body["message"]
    assert count(db, "photos") == 0
    assert_alive(login)


# --- items that do not match the API: the whole batch is refused ----------------------

BAD_ITEMS = {
    "no client_id": {"client_id": None},  # None: the key is left out
    "empty client_id": {"client_id": ""},
    "client_id with NUL": {"client_id": "a\x00b"},
    "client_id with newline": {"client_id": "a\nb"},
    "client_id with U+202E": {"client_id": "\u202eabc"},
    "client_id with zero-width space": {"client_id": "a\u200bb"},
    "client_id of 101 characters": {"client_id": "c" * 101},
    "client_id a number": {"client_id": 7},
    "unknown key": {"extra": 1},
    "unknown key of 100,000 characters": {"k" * 100_000: 1},
    "record_type unknown": {"record_type": "dog"},
    "record_type with a path": {"record_type": "../person"},
    "record_type upper case": {"record_type": "PERSON"},
    "action unknown": {"action": "delete"},
    "base_version a string": {"base_version": "3"},
    "base_version a float": {"base_version": 1.5},
    "base_version a whole float": {"base_version": 3.0},
    "base_version true": {"base_version": True},
    "base_version negative": {"base_version": -1},
    "base_version 2**53 + 1": {"base_version": 2 ** 53 + 1},
    "base_version 10**30": {"base_version": 10 ** 30},
    "base_version 2**64": {"base_version": 2 ** 64},
    "replaces 0": {"replaces": 0},
    "replaces a string": {"replaces": "1"},
    "data a list": {"data": [person(1)]},
    "data a string": {"data": json.dumps(person(1))},
    "data null": {"data": None, "keep_none": True},
    "collected_at not a time": {"collected_at": "yesterday"},
    "collected_at of 100,000 characters": {"collected_at": "2" * 100_000},
    "collected_at a number": {"collected_at": 1763600000},
    "grid_code a number": {"grid_code": int(GRID_CODE)},
    "grid_code null": {"grid_code": None, "keep_none": True},
    "grid_code of 100,000 characters": {"grid_code": "4" * 100_000},
}


@pytest.mark.parametrize("case", BAD_ITEMS, ids=str)
def test_an_item_not_matching_the_api_refuses_the_batch(login, db, w3, case):
    changes = dict(BAD_ITEMS[case])
    keep_none = changes.pop("keep_none", False)
    bad = item("bad", person(2))
    for key, value in changes.items():
        if value is None and not keep_none:
            del bad[key]
        else:
            bad[key] = value
    response = w3.post(SUBMISSIONS, json={"submissions": [item("good", person(1)), bad]})
    body = assert_problem(response, 422, "invalid_request")
    assert list(body["errors"]["submissions"]) == ["1"]  # names the bad item, not the good
    assert count(db) == 0
    assert count(db, "invalid_attempts") == 0
    assert_alive(login)


# --- data that does not meet the standard: per-item "invalid", nothing stored ---------

LONG = 100_000
BAD_DATA = {
    # id: (record_type, data as a dict or raw JSON text, field, code)
    "name of 100,000 characters": ("person", person(1, name="张" * LONG), "name", "too_long"),
    "id_number of 100,000 characters": ("person", person(1, id_number="1" * LONG),
                                        "id_number", "id_format"),
    "phone of 100,000 characters": ("person", person(1, phone="1" * LONG), "phone", "mobile"),
    "house_code of 100,000 characters": ("person", person(1, house_code="1" * LONG),
                                         "house_code", "format"),
    "sex of 100,000 characters": ("person", person(1, sex="1" * LONG), "sex",
                                  "not_in_code_table"),
    "description of 100,000 characters": ("event", event(description="事" * LONG),
                                          "description", "too_long"),
    "a key of 100,000 characters": ("person", {**person(1), "k" * LONG: "v"}, "k" * LONG,
                                    "unknown_field"),
    "name with NUL": ("person", person(1, name="张\x00伟"), "name", "control_character"),
    "name with U+202E": ("person", person(1, name="\u202e伟张"), "name", "control_character"),
    "name with U+2066": ("person", person(1, name="张\u2066伟"), "name",
                         "control_character"),
    "name with zero-width space": ("person", person(1, name="张\u200b伟"), "name",
                                   "control_character"),
    "name with ANSI escape": ("person", person(1, name="张\x1b[31m伟"), "name",
                              "control_character"),
    "name with DEL": ("person", person(1, name="张伟\x7f"), "name", "control_character"),
    "name with BOM": ("person", person(1, name="\ufeff张伟"), "name", "control_character"),
    "description with NUL": ("event", event(description="楼道堆放杂物\x00存在隐患"),
                             "description", "control_character"),
    "description with U+202E": ("event", event(description="楼道堆放杂物\u202e存在隐患"),
                                "description", "control_character"),
    "lat 1e400": ("event", json.dumps(event()).replace("30.7", "1e400"), "location.lat",
                  "not_finite"),
    "lat -1e400": ("event", json.dumps(event()).replace("30.7", "-1e400"), "location.lat",
                   "not_finite"),
    "lat NaN": ("event", json.dumps(event()).replace("30.7", "NaN"), "location.lat",
                "not_finite"),
    "lon Infinity": ("event", json.dumps(event()).replace("111.29", "Infinity"),
                     "location.lon", "not_finite"),
    "lat of 4300 digits": ("event", json.dumps(event()).replace("30.7", "9" * 4300),
                           "location.lat", "too_large"),
    "birth_date 1e400": ("person", json.dumps(person(1)).replace('"1980-01-01"', "1e400"),
                         "birth_date", "type"),
    "name a number": ("person", person(1, name=1e300), "name", "type"),
    "name a list": ("person", person(1, name=["张伟"]), "name", "type"),
    "name an object": ("person", person(1, name={"$ne": ""}), "name", "type"),
}


@pytest.mark.parametrize("case", BAD_DATA, ids=str)
def test_data_not_meeting_the_standard_is_an_invalid_item(login, db, w3, case):
    record_type, data, field, code = BAD_DATA[case]
    if isinstance(data, dict):
        data = json.dumps(data, ensure_ascii=False)
    response = post_body(w3, raw_batch(data, record_type))
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    [result] = strict_json(response)["results"]
    assert result["status"] == "invalid" and result["id"] is None
    assert (field, code) in {(e["field"], e["code"]) for e in result["errors"]}
    assert all(set(e) == {"field", "code", "message"} and " / " in e["message"]
               for e in result["errors"])
    assert count(db) == 0
    assert count(db, "invalid_attempts") == 1
    assert_alive(login)


# --- odd but acceptable data: normalised or kept verbatim, never executed --------------

def test_full_width_digits_in_an_id_number_are_normalised(login, db, w3):
    number = id_number(5)
    sent = person(5, id_number=number.translate(FULL_WIDTH),
                  phone="１３８ １２３４ ５６７８")
    assert sent["id_number"] != number
    response = w3.submit(item("fw", sent))
    [result] = response.json["results"]
    assert result["status"] == "accepted", result
    data, key = db.execute("SELECT data, natural_key FROM submissions").fetchone()
    stored = json.loads(data)
    assert stored["id_number"] == number and stored["id_number"].isascii()
    assert key == number
    assert stored["phone"] == "13812345678"
    assert w3.get(f"{SUBMISSIONS}/{result['id']}").json["data"]["id_number"] == number
    # the same person again in ASCII is the same record: a second submission, same key
    again = w3.submit(item("ascii", person(5)))
    assert again.json["results"][0]["status"] == "accepted"
    assert {k for (k,) in db.execute("SELECT natural_key FROM submissions")} == {number}
    assert_alive(login)


SQL = "Robert'); DROP TABLE submissions;--"


def tables(db):
    return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_sql_in_text_is_stored_as_text(login, db, w3):
    before = tables(db)
    response = w3.submit(item(SQL, person(1, name=SQL)),
                         item("g", person(2), grid_code="420502001002003' OR '1'='1"))
    assert [(r["client_id"], r["status"]) for r in response.json["results"]] == [
        (SQL, "accepted"), ("g", "forbidden")]
    assert tables(db) == before and {"submissions", "users", "audit"} <= before
    client_id, data = db.execute("SELECT client_id, data FROM submissions").fetchone()
    assert client_id == SQL and json.loads(data)["name"] == SQL
    sid = response.json["results"][0]["id"]
    assert w3.get(f"{SUBMISSIONS}/{sid}").json["data"]["name"] == SQL
    assert count(db) == 1
    assert_alive(login)


@pytest.mark.parametrize("who, path, status, error", [
    ("sup", f"{SUBMISSIONS}?record_type=person'%20OR%20'1'='1", 422, "invalid_request"),
    ("sup", f"{SUBMISSIONS}?grid=420502'--", 422, "invalid_request"),
    ("sup", f"{SUBMISSIONS}?state=pending'%3B%20DROP%20TABLE%20submissions%3B--", 422,
     "invalid_request"),
    ("sup", f"{SUBMISSIONS}?cursor=1'%20OR%201=1--", 400, "bad_cursor"),
    ("admin", f"{API}/users/admin'--", 404, "not_found"),
    ("admin", f"{API}/users/%25", 404, "not_found"),
    ("w3", f"{API}/grids/420502001002003'%20OR%20'1'='1", 404, "not_found"),
])
def test_sql_in_queries_and_paths_is_refused(login, db, who, path, status, error):
    login("w3").submit(item("a", person(1)))
    before = tables(db)
    assert_problem(login(who).get(path), status, error)
    assert tables(db) == before and count(db) == 1
    assert_alive(login)


def test_sql_in_a_login_is_wrong_credentials(client, login, db):
    for username in ("admin' --", "admin' OR '1'='1", SQL):
        response = client.post(f"{API}/auth/token",
                               json={"username": username, "password": "' OR '1'='1"})
        assert_problem(response, 401, "bad_credentials")
    assert count(db, "users") == 7
    assert_alive(login)


SCRIPT = "<script>alert(document.cookie)</script>"


def test_html_in_text_is_kept_verbatim_and_served_as_json(login, db, w3):
    response = w3.submit(item("h1", person(1, name=SCRIPT)),
                         item("h2", event(description=f"楼道{SCRIPT}<img src=x onerror=1>"),
                              "event"))
    assert [r["status"] for r in response.json["results"]] == ["accepted", "accepted"]
    sid = response.json["results"][0]["id"]
    read = login("sup").get(f"{SUBMISSIONS}/{sid}")
    assert read.json["data"]["name"] == SCRIPT  # not escaped, not stripped: it is data
    assert read.mimetype == "application/json"
    assert read.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in read.headers["Content-Security-Policy"]
    assert count(db) == 2
    assert_alive(login)


# --- path tricks in grid codes -------------------------------------------------------------

GRID_TRICKS = ["../../etc/passwd", f"{GRID_CODE}/../x", f"{GRID_CODE}/../{GRID_FAR}",
               f"{GRID_CODE}%2F..%2Fx", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
               GRID_CODE.translate(FULL_WIDTH), f"{GRID_CODE}\x00", f" {GRID_CODE}",
               f"{GRID_CODE}\n", f"{GRID_CODE}0", GRID_CODE[:-1], GRID_CODE[:12], "", "*",
               "%", f"{GRID_CODE[:12]}%", f"{GRID_CODE}' OR '1'='1"]


@pytest.mark.parametrize("code", GRID_TRICKS)
def test_a_tricky_grid_code_in_an_item_is_forbidden(login, db, w3, code):
    response = w3.submit(item("t", person(1), grid_code=code))
    assert response.status_code == 200
    assert response.json["results"] == [
        {"client_id": "t", "status": "forbidden", "id": None, "errors": []}]
    assert count(db) == 0
    assert_alive(login)


URL_TRICKS = ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", f"{GRID_CODE}/../{GRID_FAR}",
              f"{GRID_CODE}%2F..%2F{GRID_FAR}", f"%2e%2e%2f{GRID_FAR}", "%2e%2e",
              GRID_CODE.translate(FULL_WIDTH), f"{GRID_CODE}%00", f"{GRID_CODE}%20",
              f"%20{GRID_CODE}", f"{GRID_CODE}%0A", f"{GRID_CODE}0", GRID_CODE[:12],
              f"{GRID_CODE[:12]}%25", f"{GRID_CODE[:12]}___", GRID_FAR, "4" * 10_000]


@pytest.mark.parametrize("suffix", ["", "/standards"])
@pytest.mark.parametrize("code", URL_TRICKS)
def test_a_tricky_grid_code_in_the_url_is_not_found(login, db, w3, code, suffix):
    missing = w3.get(f"{API}/grids/420502001002999{suffix}")
    assert_problem(missing, 404, "not_found")
    response = w3.get(f"{API}/grids/{code}{suffix}")
    assert_problem(response, 404, "not_found")
    assert response.data == missing.data  # the same answer as a grid that does not exist
    assert w3.get(f"{API}/grids/{GRID_CODE}{suffix}").status_code == 200
    assert_alive(login)


@pytest.mark.parametrize("sha", ["..%2F..%2Fetc%2Fpasswd", "../../../../etc/passwd",
                                 "%00", "a" * 64, "A" * 10_000, "'%20OR%20'1'='1"])
def test_a_tricky_photo_name_is_not_found(login, w3, sha):
    sid = w3.submit(item("ph")).json["results"][0]["id"]
    response = w3.get(f"{SUBMISSIONS}/{sid}/photos/{sha}")
    assert_problem(response, 404, "not_found")
    assert_alive(login)


# --- tokens ---------------------------------------------------------------------------------

def _token(login):
    return login("w3").token


AUTH_HEADERS = {
    # id: (header factory from a valid token, problem)
    "forged": (lambda t: "Bearer " + secrets.token_urlsafe(32), "token_invalid"),
    "one character changed": (lambda t: "Bearer " + t[:-1] + ("A" if t[-1] != "A" else "B"),
                              "token_invalid"),
    "NUL appended": (lambda t: f"Bearer {t}\x00", "token_invalid"),
    "NUL inside": (lambda t: f"Bearer {t[:10]}\x00{t[10:]}", "token_invalid"),
    "token twice": (lambda t: f"Bearer {t} {t}", "token_invalid"),
    "the token's hash": (lambda t: "Bearer " + hashlib.sha256(t.encode()).hexdigest(), "token_invalid"),
    "SQL": (lambda t: "Bearer ' OR '1'='1", "token_invalid"),
    "100,000 characters": (lambda t: "Bearer " + "a" * 100_000, "token_invalid"),
    "empty": (lambda t: "", "auth_required"),
    "Bearer alone": (lambda t: "Bearer", "auth_required"),
    "Bearer and spaces": (lambda t: "Bearer     ", "auth_required"),
    "Basic": (lambda t: "Basic dzM6Y29ycmVjdCBob3JzZQ==", "auth_required"),
    "other scheme": (lambda t: f"Token {t}", "auth_required"),
    "no scheme": (lambda t: t, "auth_required"),
}


@pytest.mark.parametrize("case", AUTH_HEADERS, ids=str)
def test_a_bad_authorization_header_is_401(client, login, db, case):
    make, error = AUTH_HEADERS[case]
    headers = {"Authorization": make(_token(login))}
    for response in (client.get(f"{API}/me", headers=headers),
                     client.post(SUBMISSIONS, json={"submissions": [item("a")]},
                                 headers=headers)):
        assert_problem(response, 401, error)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert count(db) == 0
    assert_alive(login)


def test_a_revoked_token_is_401(client, login, db):
    w3 = login("w3")
    assert w3.delete(f"{API}/auth/token").status_code == 204
    assert_problem(w3.submit(item("a")), 401, "token_invalid")
    assert count(db) == 0


# --- numbers at and beyond the edges ----------------------------------------------------

@pytest.mark.parametrize("value", [0, 2 ** 53])
def test_base_version_at_the_edges_is_accepted(login, db, w3, value):
    response = w3.submit(item("b", person(1), base_version=value))
    assert response.json["results"][0]["status"] == "accepted"
    assert db.execute("SELECT base_version FROM submissions").fetchone()[0] == value


def test_base_version_1e400_is_not_an_integer(login, db, w3):
    body = batch(item("b")).replace(b'"action"', b'"base_version": 1e400, "action"')
    response = post_body(w3, body)
    body = assert_problem(response, 422, "invalid_request")
    assert "base_version" in body["errors"]["submissions"]["0"]
    assert count(db) == 0
    assert_alive(login)


ID_PATHS = {
    "read": ("w3", "get", "{id}", {}),
    "photo": ("w3", "post", "{id}/photos", {"data": b"\xff\xd8\xff\xe0" + b"\x00" * 16
                                             + b"\xff\xd9", "content_type": "image/jpeg"}),
    "photo file": ("w3", "get", "{id}/photos/" + "0" * 64, {}),
    "review": ("sup", "post", "{id}/review", {"json": {"action": "confirm"}}),
}


# in range but missing, or not in ASCII digits at all (matching no route)
@pytest.mark.parametrize("number", [2 ** 63 - 1, 2 ** 53 + 1, 0,
                                    "１", "٣", "+1", "1.0", "0x1", " 1"])
@pytest.mark.parametrize("case", ID_PATHS, ids=str)
def test_an_id_that_names_no_submission_is_not_found(login, db, case, number):
    who, method, path, kwargs = ID_PATHS[case]
    login("w3").submit(item("pending"))
    response = getattr(login(who), method)(f"{SUBMISSIONS}/{path.format(id=number)}", **kwargs)
    assert_problem(response, 404, "not_found")
    assert db.execute("SELECT state FROM submissions").fetchall() == [("pending",)]
    assert_alive(login)


@pytest.mark.parametrize("number", [2 ** 63, 10 ** 30])
@pytest.mark.parametrize("case", ID_PATHS, ids=str)
def test_an_id_beyond_64_bits_is_not_found(login, db, case, number):
    who, method, path, kwargs = ID_PATHS[case]
    login("w3").submit(item("pending"))
    caller = login(who)
    missing = getattr(caller, method)(f"{SUBMISSIONS}/{path.format(id=987654)}", **kwargs)
    response = getattr(caller, method)(f"{SUBMISSIONS}/{path.format(id=number)}", **kwargs)
    assert_problem(response, 404, "not_found")
    assert response.data == missing.data
    assert_alive(login)


@pytest.mark.parametrize("ids, status, error", [
    (list(range(1, 502)), 422, "invalid_request"),  # at most 500 ids (schema length)
    ([2 ** 53 + 1], 422, "invalid_request"),
    ([10 ** 30], 422, "invalid_request"),
    (["1"], 422, "invalid_request"),
    ([True], 422, "invalid_request"),
    ([1.0], 422, "invalid_request"),
    ([], 422, "invalid_request"),
])
def test_a_bulk_review_with_bad_ids_is_refused(login, db, ids, status, error):
    login("w3").submit(item("pending"))
    response = login("sup").post(f"{API}/reviews", json={"ids": ids, "action": "confirm"})
    assert_problem(response, status, error)
    assert db.execute("SELECT state FROM submissions").fetchall() == [("pending",)]
    assert_alive(login)


# --- timestamps at the edges of what datetime can hold -----------------------------------

@pytest.mark.parametrize("who, path", [
    ("sup", f"{SUBMISSIONS}?since=0001-01-01T00:00:00%2B08:00"),
    ("sup", f"{SUBMISSIONS}?until=0001-01-01T00:00:00%2B08:00"),
    ("sup", f"{SUBMISSIONS}?since=9999-12-31T23:59:59-12:00"),
    ("admin", f"{API}/audit?since=0001-01-01T00:00:00%2B08:00"),
])
def test_a_query_time_at_the_edge_is_answered(login, who, path):
    response = login(who).get(path)
    assert response.status_code in (200, 422), response.get_data(as_text=True)[:300]
    if response.status_code == 422:
        assert_problem(response, 422, "invalid_request")
    assert_alive(login)


def test_a_collected_at_at_the_edge_is_answered(login, db, w3):
    response = w3.submit(item("old", collected_at="0001-01-01T00:00:00+08:00"))
    assert response.status_code in (200, 422), response.get_data(as_text=True)[:300]
    if response.status_code == 422:
        assert_problem(response, 422, "invalid_request")
        assert count(db) == 0
    else:
        assert response.json["results"][0]["status"] in ("accepted", "invalid")
    assert_alive(login)


def test_a_collected_at_far_in_the_future_is_invalid(login, db, w3):
    response = w3.submit(item("late", collected_at="9999-12-31T23:59:59-12:00"))
    [result] = response.json["results"]
    assert result["status"] == "invalid"
    assert [(e["field"], e["code"]) for e in result["errors"]] == [("collected_at", "future")]
    assert count(db) == 0


# --- accounts: hostile usernames ---------------------------------------------------------

@pytest.mark.parametrize("username, error", [
    ("a\x00b", "bad_account"), ("\u202eadmin", "bad_account"), ("../admin", "bad_account"),
    ("<script>", "bad_account"), ("u" * 100_000, "invalid_request"), ("", "invalid_request"),
])
def test_a_hostile_username_is_refused(login, db, username, error):
    response = login("admin").post(f"{API}/users", json={
        "username": username, "role": "worker", "scope": [GRID_CODE],
        "password": "a long password"})
    assert_problem(response, 422, error)
    assert count(db, "users") == 7
    assert_alive(login)


def test_a_huge_login_is_refused_before_hashing(client, login, db):
    response = client.post(f"{API}/auth/token",
                           json={"username": "w3", "password": "x" * 1_000_000})
    assert_problem(response, 422, "invalid_request")
    response = client.post(f"{API}/auth/token", json={"username": "w" * 100_000,
                                                      "password": "x"})
    assert_problem(response, 422, "invalid_request")
    assert_alive(login)


# --- times and notes that look almost right -------------------------------------------

def test_a_query_time_beyond_year_9999_in_china_means_no_later_rows(login):
    sup = login("sup")
    login("w3").submit(item("pending"))
    response = sup.get(f"{SUBMISSIONS}?since=9999-12-31T23:59:59-12:00")
    assert response.status_code == 200
    assert response.json["items"] == []
    assert len(sup.get(f"{SUBMISSIONS}?until=9999-12-31T23:59:59-12:00").json["items"]) == 1


@pytest.mark.parametrize("note", ["a\x00b", "a\x1bb", "a\u202eb", "\ufeffa"])
def test_a_note_with_control_characters_is_refused(login, db, note):
    login("w3").submit(item("pending"))
    response = login("sup").post(f"{SUBMISSIONS}/1/review", json={"action": "return",
                                                                 "note": note})
    assert_problem(response, 422, "invalid_request")
    assert db.execute("SELECT state FROM submissions").fetchall() == [("pending",)]


def test_a_note_may_have_line_breaks(login, db):
    login("w3").submit(item("pending"))
    response = login("sup").post(f"{SUBMISSIONS}/1/review", json={"action": "return",
                                                                 "note": "请核对：\r\n\t门牌号"})
    assert response.status_code == 200, response.json
    assert db.execute("SELECT state FROM submissions").fetchall() == [("returned",)]
