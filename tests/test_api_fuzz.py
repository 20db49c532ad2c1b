"""Property tests over the API: whatever JSON a phone or a script sends, the answer is
a 2xx or a 4xx in the one error shape, and what is stored matches what was answered."""
import json
import string
import tempfile

import pytest
from conftest import FAST_HASH, GRID_CODE, PASSWORD, item, person, seed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
    st.floats(allow_nan=False), st.text(max_size=30),
    st.sampled_from(["", " ", "１２３", "420502198001011233", GRID_CODE, "2026-11-20",
                     "2026-11-20T10:00:00+08:00", "0001-01-01T00:00:00+09:00", "\u202e",
                     "'; DROP TABLE submissions; --", "<script>", "=1+1", "\x00"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)),
    max_leaves=8)
ITEM_KEYS = ["client_id", "record_type", "grid_code", "action", "collected_at",
             "base_version", "replaces", "data"]
DATA_KEYS = ["id_number", "name", "sex", "birth_date", "ethnicity", "residence_type",
             "phone", "special_groups", "house_code"]


@pytest.fixture(scope="module")
def api():
    from gridcollect import store
    from gridcollect.app import create_app
    folder = tempfile.mkdtemp()
    app = create_app({"DATABASE": f"{folder}/fuzz.db", "SCRYPT_N": FAST_HASH})
    db = app.extensions["gridcollect"].db()
    seed(db)
    client = app.test_client()
    tokens = {}
    for user in ("w3", "sup", "admin"):
        response = client.post("/api/v1/auth/token", json={"username": user,
                                                            "password": PASSWORD})
        tokens[user] = {"Authorization": f"Bearer {response.json['token']}"}
    return client, tokens, db, store


def assert_answered(response):
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code >= 400:
        body = response.json
        assert set(body) == {"code", "status", "message", "error", "errors"}, body
        assert body["code"] == response.status_code


def count(db):
    return db.execute("SELECT count(*) FROM submissions").fetchone()[0]


mutated_items = st.tuples(
    st.integers(0, 10 ** 6),
    st.dictionaries(st.sampled_from(ITEM_KEYS), json_values, max_size=2),
    st.dictionaries(st.sampled_from(DATA_KEYS), json_values, max_size=3),
    st.lists(st.sampled_from(ITEM_KEYS + ["data"]), max_size=1))


@SETTINGS
@given(st.lists(mutated_items, min_size=1, max_size=4))
def test_any_batch_is_answered_and_stored_as_answered(api, batch):
    client, tokens, db, store = api
    items = []
    for index, item_changes, data_changes, dropped in batch:
        record = item(f"c{index}", {**person(index % 900), **data_changes})
        record.update(item_changes)
        for key in dropped:
            record.pop(key, None)
        items.append(record)
    before = count(db)
    response = client.post("/api/v1/submissions", data=json.dumps({"submissions": items}),
                           headers={**tokens["w3"], "Content-Type": "application/json"})
    assert_answered(response)
    if response.status_code != 200:
        assert count(db) == before  # refused whole: nothing stored
        return
    results = response.json["results"]
    assert len(results) == len(items)
    assert {r["status"] for r in results} <= {"accepted", "duplicate", "invalid", "forbidden"}
    accepted = {r["id"] for r in results if r["status"] == "accepted"}
    assert count(db) == before + len(accepted)


@SETTINGS
@given(json_values)
def test_any_body_anywhere_is_answered(api, body):
    client, tokens, db, store = api
    data = json.dumps(body)
    for who, path in (("w3", "/api/v1/submissions"), (None, "/api/v1/auth/token"),
                      ("sup", "/api/v1/reviews"), ("sup", "/api/v1/submissions/1/review"),
                      ("admin", "/api/v1/users"), ("w3", "/api/v1/submissions/1/photos")):
        headers = {**(tokens[who] if who else {}), "Content-Type": "application/json"}
        assert_answered(client.post(path, data=data, headers=headers))
    assert_answered(client.patch("/api/v1/users/w4", data=data, headers={
        **tokens["admin"], "Content-Type": "application/json"}))


query_text = st.text(alphabet=string.printable + "１٣\u202e\u00e9", max_size=25)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["state", "grid", "record_type", "since", "until",
                                        "limit", "cursor", "under", "geometry", "format",
                                        "actor", "action", "object_id"]),
                       query_text, max_size=4))
def test_any_query_is_answered(api, query):
    client, tokens, db, store = api
    for who, path in (("sup", "/api/v1/submissions"), ("w3", "/api/v1/grids"),
                      ("admin", "/api/v1/audit"), ("w3", f"/api/v1/grids/{GRID_CODE}/standards"),
                      ("admin", "/api/v1/users")):
        assert_answered(client.get(path, query_string=query, headers=tokens[who]))
