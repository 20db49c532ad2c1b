"""The phone -> supervisor flow over real HTTP, against `python server.py` subprocesses
(gunicorn, two workers each, two servers on one SQLite file)."""
import concurrent.futures
import json
import socket
import time
import uuid

import pytest
import requests
from live import Phone, Server, log_problems, make_city

from conftest import GRID_CODE, GRID_FAR, item, person


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("e2e")
    db = make_city(folder)
    first, second = Server(db, folder / "server1.log"), Server(db, folder / "server2.log")
    yield first, second, db
    first.stop()
    second.stop()
    assert log_problems(folder / "server1.log", folder / "server2.log") == []


def test_collect_and_confirm(servers):
    first, second, _ = servers
    phone, supervisor = Phone(first.url, "w3"), Phone(second.url, "sup")

    assert [g["code"] for g in phone.get("/grids").json()["items"]] == [GRID_CODE]
    standards = phone.get(f"/grids/{GRID_CODE}/standards")
    assert standards.status_code == 200 and "person" in standards.json()["standards"]
    cached = phone.get(f"/grids/{GRID_CODE}/standards",
                       headers={"If-None-Match": standards.headers["ETag"]})
    assert cached.status_code == 304

    batch = [item("p1", person(1)), item("p2", person(2)),
             item("bad", person(3, birth_date="1980-02-30")),
             item("far", person(4), grid_code=GRID_FAR)]
    results = phone.post("/submissions", json={"submissions": batch}).json()["results"]
    assert [r["status"] for r in results] == ["accepted", "accepted", "invalid", "forbidden"]
    assert {e["field"] for e in results[2]["errors"]} >= {"birth_date"}
    # the answer was lost on the way: the phone sends the same batch again
    retry = phone.post("/submissions", json={"submissions": batch}).json()["results"]
    assert [r["status"] for r in retry] == ["duplicate", "duplicate", "invalid", "forbidden"]
    assert [r["id"] for r in retry[:2]] == [r["id"] for r in results[:2]]

    p1, p2 = results[0]["id"], results[1]["id"]
    photo = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40 + b"\xff\xd9"  # a door, say
    added = phone.post(f"/submissions/{p2}/photos", data=photo,
                       headers={"Content-Type": "image/jpeg"})
    assert added.status_code == 201, added.text
    seen = supervisor.get(added.json()["url"].removeprefix("/api/v1"))
    assert seen.content == photo and seen.headers["Content-Type"] == "image/jpeg"
    pending = supervisor.get("/submissions?state=pending").json()["items"]
    assert {p1, p2} <= {s["id"] for s in pending}
    returned = supervisor.post(f"/submissions/{p1}/review",
                               json={"action": "return", "note": "请核实联系电话"})
    assert returned.status_code == 200 and returned.json()["state"] == "returned"
    assert supervisor.post(f"/submissions/{p1}/review",
                           json={"action": "confirm"}).status_code == 409

    mine = phone.get("/submissions?state=returned").json()["items"]
    assert [(s["id"], s["review"]["note"]) for s in mine] == [(p1, "请核实联系电话")]
    fix = phone.post("/submissions", json={"submissions": [
        item("p1-fix", person(1, phone="13987654321"))]}).json()["results"][0]
    assert fix["status"] == "accepted"
    assert phone.get(f"/submissions/{fix['id']}").json()["replaces"] == p1

    bulk = supervisor.post("/reviews", json={"ids": [fix["id"], p2], "action": "confirm"})
    assert [r["state"] for r in bulk.json()["results"]] == ["confirmed", "confirmed"]

    audit = Phone(first.url, "admin").get("/audit?limit=200").json()["items"]
    actions = {(e["actor"], e["action"]) for e in audit}
    assert {("w3", "submit"), ("sup", "review"), ("w3", "login")} <= actions


def test_concurrent_duplicate_sends_store_once(servers):
    """8 copies of one batch at the same moment, through two servers on one file."""
    first, second, db = servers
    phones = [Phone(server.url, "w4") for server in (first, second) for _ in range(4)]
    batch = {"submissions": [item(str(uuid.uuid4()), person(100 + i),
                                  grid_code="420502001002004")
                             for i in range(100)]}

    def send(phone):
        response = phone.post("/submissions", json=batch)
        assert response.status_code == 200, response.text
        return response.json()["results"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, phones))
    assert {tuple(r["id"] for r in answer) for answer in answers} != set()
    assert len({tuple(r["id"] for r in answer) for answer in answers}) == 1
    statuses = [r["status"] for answer in answers for r in answer]
    assert statuses.count("accepted") == 100 and statuses.count("duplicate") == 700
    import sqlite3
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT count(*) FROM submissions WHERE worker = 'w4'"
                              ).fetchone()[0]
    assert stored == 100


def test_bad_input_over_http_is_a_clear_4xx(servers):
    first, _, _ = servers
    phone = Phone(first.url, "w3")
    cases = [
        (b"{not json", "application/json", 400),
        (b"\xff\xfe\x00", "application/json", 400),
        (b"[" * 100_000, "application/json", 400),
        (b"submissions=1", "application/x-www-form-urlencoded", 415),
        (b"x" * (9 * 1024 * 1024), "application/json", 413),
    ]
    for body, content_type, status in cases:
        response = phone.post("/submissions", data=body, headers={"Content-Type": content_type})
        assert response.status_code == status, (body[:20], response.text)
        assert response.json()["code"] == status
    assert requests.get(f"{first.url}/me", headers={"Authorization": "Bearer forged"}
                        ).status_code == 401
    assert phone.get("/me").status_code == 200  # still serving


def test_an_oversized_body_sent_whole_gets_its_413(servers):
    """A phone that sends the whole body without waiting (no Expect: 100-continue)
    reads the 413, not a connection reset."""
    import http.client
    first, _, _ = servers
    token = Phone(first.url, "w3").session.headers["Authorization"]
    for _ in range(3):
        conn = http.client.HTTPConnection("127.0.0.1", first.port, timeout=30)
        try:
            conn.request("POST", "/api/v1/submissions", body=b"a" * (12 * 1024 * 1024),
                         headers={"Authorization": token, "Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 413
            assert json.loads(response.read())["error"] == "too_large"
        finally:
            conn.close()


def test_one_request_per_connection_and_slow_first_bytes(servers):
    """Each answer closes its connection (requests spread over the workers), and a
    phone whose request starts arriving only after 6 s is still answered."""
    first, _, _ = servers
    assert requests.get(f"{first.url}/openapi.json").headers["Connection"] == "close"
    with socket.create_connection(("127.0.0.1", first.port), timeout=30) as conn:
        time.sleep(6.5)
        conn.sendall(b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.recv(12) == b"HTTP/1.1 200"


def test_security_headers_and_docs_page(servers):
    first, _, _ = servers
    response = requests.get(f"{first.url}/me")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    page = requests.get(f"{first.url}/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert "https://" not in page.text  # nothing from a CDN: works on a closed network
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js",
                  "swagger-ui-standalone-preset.js"):
        assert requests.get(f"{first.url}/docs/assets/{asset}").status_code == 200
    spec = requests.get(f"{first.url}/openapi.json").json()
    assert "/api/v1/submissions" in spec["paths"]
