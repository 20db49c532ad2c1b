"""The OpenAPI document is valid, and every answer the API gives — success and
refusal, for every role — is listed in it with that status and matches its schema."""
import json
import re

import flask
import pytest
from conftest import GRID_CODE, GRID_FAR, PASSWORD, id_number, item, person
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry
from referencing.jsonschema import DRAFT4

API = "/api/v1"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\xdac\x60\x18\x05\xc3\x00\x00\x02\x87\x01"
       b"\x80\xeb\x47\xba\x92\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture
def document(client):
    return client.get(f"{API}/openapi.json").json


def test_the_document_is_valid_openapi(document):
    validate_spec(document)


def test_the_document_uses_portable_patterns(document):
    """Patterns are ECMA-262 (what JavaScript and JSON Schema tools read), not Python."""
    patterns = re.findall(r'"pattern": "((?:[^"\\]|\\.)*)"', json.dumps(document))
    assert patterns
    for pattern in patterns:
        assert "\\\\Z" not in pattern and pattern.startswith("^") and pattern.endswith("$")


@pytest.fixture
def recorded(app):
    log = []

    @app.after_request
    def record(response):
        rule = flask.request.url_rule
        log.append((flask.request.method, rule.rule if rule else None, response.status_code,
                    response.mimetype, response.get_json(silent=True)
                    if response.mimetype == "application/json" else None))
        return response

    return log


def drive(client, login):
    """One of each kind of answer, success and refusal, for each role."""
    callers = {u: login(u) for u in ("w3", "w4", "sup", "supfar", "analyst", "admin")}
    w3, sup, admin = callers["w3"], callers["sup"], callers["admin"]
    client.post(f"{API}/auth/token", json={"username": "w3", "password": "wrong-one"})
    client.post(f"{API}/auth/token", json={"username": "w3"})
    client.post(f"{API}/auth/token", data="{", content_type="application/json")
    client.post(f"{API}/auth/token", data="a", content_type="text/plain")
    for _ in range(6):
        client.post(f"{API}/auth/token", json={"username": "wfar", "password": "wrong-one"})
    client.get(f"{API}/me")
    client.get(f"{API}/me", headers={"Authorization": "Bearer forged"})
    results = w3.submit(item("a1"), item("a2", person(2, sex="9")),
                        item("a3", grid_code=GRID_FAR), item("a1"), item("a4", person(4)),
                        item("r1", {"id_number": id_number(9)}, action="retire")).json["results"]
    ids = [r["id"] for r in results]
    w3.post(f"{API}/submissions", json={"submissions": [item(str(i)) for i in range(501)]})
    w3.post(f"{API}/submissions", json={"submissions": []})
    w3.post(f"{API}/submissions", data="[", content_type="application/json")
    w3.post(f"{API}/submissions", data="{}", content_type="text/plain")
    photo = w3.post(f"{API}/submissions/{ids[0]}/photos", data=PNG, content_type="image/png")
    w3.post(f"{API}/submissions/{ids[0]}/photos", data=b"xx", content_type="image/png")
    w3.post(f"{API}/submissions/{ids[0]}/photos", data=b"xx", content_type="image/gif")
    callers["w4"].post(f"{API}/submissions/{ids[0]}/photos", data=PNG, content_type="image/png")
    admin.post(f"{API}/submissions/{ids[0]}/photos", data=PNG, content_type="image/png")
    for caller in callers.values():
        caller.get(f"{API}/me")
        caller.get(f"{API}/grids?limit=1")
        caller.get(f"{API}/grids/{GRID_CODE}")
        standards = caller.get(f"{API}/grids/{GRID_CODE}/standards")
        if standards.status_code == 200:
            caller.get(f"{API}/grids/{GRID_CODE}/standards",
                       headers={"If-None-Match": standards.headers["ETag"]})
        caller.get(f"{API}/grids/{GRID_CODE}/standards?format=json-schema")
        caller.get(f"{API}/submissions?limit=1")
        caller.get(f"{API}/submissions/{ids[0]}")
        caller.get(photo.json["url"]).close()  # a streamed file
        caller.get(f"{API}/users")
        caller.get(f"{API}/audit?limit=2")
        caller.post(f"{API}/reviews", json={"ids": [ids[4]], "action": "reject", "note": "x"})
    sup.get(f"{API}/grids?cursor=zzz")
    sup.get(f"{API}/submissions?state=nonsense")
    sup.post(f"{API}/submissions/{ids[0]}/review", json={"action": "return"})
    sup.post(f"{API}/submissions/{ids[0]}/review", json={"action": "return", "note": "电话"})
    sup.post(f"{API}/submissions/{ids[0]}/review", json={"action": "confirm"})
    w3.submit(item("a1-fix", person(1, phone="13900000000")))
    w3.get(f"{API}/submissions?state=returned")
    admin.post(f"{API}/users", json={"username": "new1", "role": "worker",
                                     "scope": [GRID_CODE], "password": PASSWORD})
    admin.post(f"{API}/users", json={"username": "new1", "role": "worker",
                                     "scope": [GRID_CODE], "password": PASSWORD})
    admin.post(f"{API}/users", json={"username": "new2", "role": "king", "password": "x"})
    admin.get(f"{API}/users/new1")
    admin.get(f"{API}/users/nobody")
    admin.patch(f"{API}/users/new1", json={"scope": ["420502"], "disabled": True})
    admin.patch(f"{API}/users/new1", json={"unmasked": 1})
    admin.post(f"{API}/users/w4/revoke-tokens")
    admin.put(f"{API}/me")
    w3.delete(f"{API}/auth/token")


def test_every_answer_is_documented(recorded, client, login, document):
    drive(client, login)
    registry = Registry().with_resource("urn:doc", DRAFT4.create_resource(document))
    seen, problems = set(), []
    for method, rule, status, mimetype, body in recorded:
        if rule is None or not rule.startswith(API) or rule.endswith("openapi.json"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)
        operation = document["paths"][path].get(method.lower())
        if operation is None:
            assert status == 405
            continue
        seen.add((method, path, status))
        response = operation["responses"].get(str(status))
        if response is None:
            problems.append(f"{method} {path}: {status} is not listed")
            continue
        if "$ref" in response:
            response = document["components"]["responses"][response["$ref"].split("/")[-1]]
        if status in (204, 304):  # no body
            assert mimetype is None
            continue
        content = response.get("content", {})
        if mimetype not in content:
            problems.append(f"{method} {path} {status}: {mimetype} not in {list(content)}")
            continue
        if body is None:
            continue
        schema = json.loads(json.dumps(content[mimetype]["schema"]).replace(
            '"#/components', '"urn:doc#/components'))
        for error in OAS30Validator(schema, registry=registry).iter_errors(body):
            problems.append(f"{method} {path} {status}: {error.message[:200]}")
    assert problems == [], "\n".join(problems)
    statuses = {status for _, _, status in seen}
    assert {200, 201, 204, 304, 400, 401, 403, 404, 409, 413, 415, 422, 429} <= statuses
