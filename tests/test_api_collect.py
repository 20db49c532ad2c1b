"""Collect: grids, standards for offline use, batches of submissions, photos."""
import json
import threading

import pytest

from conftest import COLLECTED_AT, GRID_CODE, GRID_FAR, GRID_OTHER, id_number, item, person


def count(db, table="submissions"):
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# --- grids and standards -----------------------------------------------------------

def test_grids_are_those_in_scope(login):
    assert [g["code"] for g in login("w3").get("/api/v1/grids").json["items"]] == [GRID_CODE]
    assert [g["code"] for g in login("sup").get("/api/v1/grids").json["items"]] == [
        GRID_CODE, GRID_OTHER]
    assert len(login("admin").get("/api/v1/grids").json["items"]) == 3
    grid = login("w3").get("/api/v1/grids").json["items"][0]
    assert grid["geometry"]["type"] == "Polygon"
    assert login("w3").get("/api/v1/grids?geometry=false").json["items"][0]["geometry"] is None


def test_grids_page_with_a_cursor(login):
    admin = login("admin")
    first = admin.get("/api/v1/grids?limit=2").json
    assert len(first["items"]) == 2 and first["next"]
    second = admin.get(f"/api/v1/grids?limit=2&cursor={first['next']}").json
    assert [g["code"] for g in second["items"]] == [GRID_FAR] and second["next"] is None
    assert admin.get("/api/v1/grids?cursor=@@@").status_code == 400


def test_standards_with_etag(login):
    w3 = login("w3")
    response = w3.get(f"/api/v1/grids/{GRID_CODE}/standards")
    assert response.status_code == 200
    body = response.json
    person_standard = body["standards"]["person"]
    assert person_standard["version"] == "2026.1+420502001002.1"  # the overlay applies
    fields = {f["name"]: f for f in person_standard["fields"]}
    assert fields["phone"]["required"] is True and fields["id_number"]["natural_key"]
    assert body["code_tables"]["gb_t_3304"]["codes"]["01"] == "汉族"
    etag = response.headers["ETag"]
    again = w3.get(f"/api/v1/grids/{GRID_CODE}/standards", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    schema = w3.get(f"/api/v1/grids/{GRID_CODE}/standards?format=json-schema")
    assert schema.headers["ETag"] != etag
    person_schema = schema.json["schemas"]["person"]
    assert "phone" in person_schema["required"]
    assert person_schema["properties"]["sex"]["enum"] == ["0", "1", "2", "9"]
    assert person_schema["properties"]["id_number"]["x-gridcollect-checks"] == ["gb11643"]


def test_standards_json_schema_agrees_with_the_server(login):
    """A record valid by the JSON Schema's structural rules is what the server wants."""
    import jsonschema
    schema = login("w3").get(f"/api/v1/grids/{GRID_CODE}/standards?format=json-schema")
    person_schema = schema.json["schemas"]["person"]
    jsonschema.validate(person(phone="13812345678"), person_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(person(sex="3", phone="13812345678"), person_schema)


def test_standards_of_another_grid_are_not_found(login):
    w3 = login("w3")
    assert w3.get(f"/api/v1/grids/{GRID_FAR}/standards").status_code == 404
    assert w3.get("/api/v1/grids/999999999999999/standards").json == \
        w3.get(f"/api/v1/grids/{GRID_FAR}/standards").json


# --- submissions -------------------------------------------------------------------

def test_batch_statuses_in_request_order(login, db):
    w3 = login("w3")
    response = w3.submit(item("a"), item("b", person(1, sex="2")), item("c", grid_code=GRID_FAR),
                         item("d", grid_code="999999999999999"), item("a"))
    assert response.status_code == 200
    results = response.json["results"]
    assert [r["client_id"] for r in results] == ["a", "b", "c", "d", "a"]
    assert [r["status"] for r in results] == ["accepted", "invalid", "forbidden", "forbidden",
                                              "duplicate"]
    assert results[0]["id"] == results[4]["id"] and results[1]["id"] is None
    assert results[1]["errors"] == [{"field": "sex", "code": "sex_mismatch", "message":
                                     "性别与公民身份号码第17位不一致 / Sex: does not agree with "
                                     "the 17th digit of the ID number"}]
    assert count(db) == 1
    assert count(db, "invalid_attempts") == 1


def test_an_invalid_item_twice_in_a_batch_is_invalid_twice(login, db):
    bad = item("x", person(1, birth_date="1980-02-30"))
    results = login("w3").submit(bad, bad).json["results"]
    assert [(r["status"], r["id"]) for r in results] == [("invalid", None), ("invalid", None)]
    assert results[0]["errors"] == results[1]["errors"] != []
    assert count(db) == 0 and count(db, "invalid_attempts") == 1
    fixed = login("w3").submit(item("x", person(1))).json["results"][0]
    assert fixed["status"] == "accepted"


def test_a_client_id_twice_in_a_batch_has_one_verdict(login, db):
    """The first copy decides, even when the second names another grid."""
    results = login("w3").submit(item("y", grid_code=GRID_FAR), item("y")).json["results"]
    assert [r["status"] for r in results] == ["forbidden", "forbidden"]
    assert count(db) == 0


def test_a_retried_batch_stores_nothing_twice(login, db):
    w3 = login("w3")
    batch = [item(f"c{i}", person(i)) for i in range(20)]
    first = w3.submit(*batch).json["results"]
    again = w3.submit(*batch).json["results"]
    assert {r["status"] for r in first} == {"accepted"}
    assert {r["status"] for r in again} == {"duplicate"}
    assert [r["id"] for r in first] == [r["id"] for r in again]
    assert count(db) == 20


def test_client_ids_are_per_worker(login, db):
    assert login("w3").submit(item("same")).json["results"][0]["status"] == "accepted"
    other = login("w4").submit(item("same", grid_code=GRID_OTHER)).json["results"][0]
    assert other["status"] == "accepted"
    assert count(db) == 2


def test_concurrent_copies_of_a_batch_store_it_once(app, login, db):
    token = login("w3").token
    batch = {"submissions": [item(f"x{i}", person(i)) for i in range(50)]}
    answers = []

    def send():
        client = app.test_client()
        answers.append(client.post("/api/v1/submissions", json=batch,
                                   headers={"Authorization": f"Bearer {token}"}).json)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert count(db) == 50
    ids = {tuple(r["id"] for r in answer["results"]) for answer in answers}
    assert len(ids) == 1  # every copy got the same ids
    statuses = [r["status"] for answer in answers for r in answer["results"]]
    assert statuses.count("accepted") == 50


def test_an_invalid_item_can_be_sent_again_corrected(login, db):
    w3 = login("w3")
    assert w3.submit(item("k", person(1, sex="2"))).json["results"][0]["status"] == "invalid"
    assert w3.submit(item("k", person(1))).json["results"][0]["status"] == "accepted"
    assert count(db) == 1


def test_stored_submission_is_normalised_and_records_its_standard(login):
    w3 = login("w3")
    number = id_number(7, birth="19491231")
    lower = number[:-1] + number[-1].lower()
    result = w3.submit(item("n", {**person(7, birth_date="1949-12-31"), "id_number": lower,
                                  "name": " 张 伟 ", "phone": "138 1234 5678"})).json
    assert result["results"][0]["status"] == "accepted", result
    stored = w3.get(f"/api/v1/submissions/{result['results'][0]['id']}").json
    assert stored["data"]["id_number"] == number.upper()
    assert stored["data"]["phone"] == "13812345678"
    assert stored["standard_version"] == "2026.1+420502001002.1"
    assert stored["natural_key"] == number.upper()
    assert stored["state"] == "pending" and stored["worker"] == "w3"
    assert stored["collected_at"] == COLLECTED_AT.replace(":00+08:00", ":00.000+08:00")
    assert stored["review"] is None and stored["replaces"] is None


def test_collected_at_in_the_future_is_invalid(login, db):
    result = login("w3").submit(item("f", collected_at="2999-01-01T00:00:00+08:00")).json
    assert result["results"][0]["status"] == "invalid"
    assert result["results"][0]["errors"][0]["field"] == "collected_at"
    assert result["results"][0]["errors"][0]["code"] == "future"
    assert count(db) == 0


def test_retire_needs_only_the_natural_key(login):
    w3 = login("w3")
    number = id_number(3)
    ok = w3.submit(item("r", {"id_number": number}, action="retire")).json["results"][0]
    assert ok["status"] == "accepted"
    assert w3.get(f"/api/v1/submissions/{ok['id']}").json["data"] == {"id_number": number}
    bad = w3.submit(item("r2", {"id_number": number[:-1] + "0"}, action="retire"))
    assert bad.json["results"][0]["errors"][0]["code"] in ("checksum",)
    event = w3.submit(item("r3", {"event_type": "01"}, record_type="event", action="retire"))
    assert event.json["results"][0]["errors"][0]["code"] == "not_retirable"


def test_event_location_must_be_inside_the_grid(login):
    event = {"event_type": "02", "description": "楼道堆放杂物存在消防隐患",
             "occurred_at": "2026-11-20T09:30:00+08:00",
             "location": {"lat": 30.70, "lon": 111.29}}
    w3 = login("w3")
    assert w3.submit(item("e1", event, "event")).json["results"][0]["status"] == "accepted"
    outside = {**event, "location": {"lat": 30.75, "lon": 111.29}}
    result = w3.submit(item("e2", outside, "event")).json["results"][0]
    assert [e["code"] for e in result["errors"]] == ["outside_grid"]


@pytest.mark.parametrize("batch, status, error", [
    ({"submissions": []}, 422, "invalid_request"),
    ({"submissions": [{"client_id": "a"}]}, 422, "invalid_request"),
    ({"submissions": [item("a", extra=1)]}, 422, "invalid_request"),
    ({"submissions": [item("a", base_version="3")]}, 422, "invalid_request"),
    ({"submissions": [item("a", collected_at="yesterday")]}, 422, "invalid_request"),
    ({"submissions": [item("a", record_type="dog")]}, 422, "invalid_request"),
    ({"submissions": [item(f"a{i}") for i in range(501)]}, 413, "too_many_items"),
    ({"items": []}, 422, "invalid_request"),
])
def test_a_malformed_batch_is_refused_whole(login, db, batch, status, error):
    good = item("good", person(9))
    if "submissions" in batch and batch["submissions"] and status == 422:
        batch = {"submissions": [good, *batch["submissions"]]}
    response = login("w3").post("/api/v1/submissions", json=batch)
    assert response.status_code == status
    assert response.json["error"] == error
    assert set(response.json) >= {"code", "status", "message", "error"}
    assert count(db) == 0


def test_item_errors_name_the_item(login):
    response = login("w3").post("/api/v1/submissions", json={"submissions": [
        item("a"), item("b", base_version=-1)]})
    assert response.status_code == 422
    assert list(response.json["errors"]["submissions"]) == ["1"]
    assert "base_version" in response.json["errors"]["submissions"]["1"]


# --- reading submissions back ------------------------------------------------------

def test_listing_is_newest_first_with_a_cursor(login):
    w3 = login("w3")
    ids = [r["id"] for r in w3.submit(*[item(f"l{i}", person(i)) for i in range(5)])
           .json["results"]]
    first = w3.get("/api/v1/submissions?limit=2").json
    assert [s["id"] for s in first["items"]] == ids[::-1][:2]
    rest = w3.get(f"/api/v1/submissions?limit=10&cursor={first['next']}").json
    assert [s["id"] for s in rest["items"]] == ids[::-1][2:] and rest["next"] is None


def test_listing_filters(login):
    login("w3").submit(item("p1", person(1)), item("h1", {
        "house_code": f"{GRID_CODE}-001-01-0101", "address": "某路1号", "usage": "1"}, "house"))
    login("w4").submit(item("p2", person(2), grid_code=GRID_OTHER))
    sup = login("sup")

    def ids(query):
        response = sup.get(f"/api/v1/submissions?{query}")
        assert response.status_code == 200, response.json
        return sorted(s["client_id"] for s in response.json["items"])

    assert ids("") == ["h1", "p1", "p2"]
    assert ids("record_type=house") == ["h1"]
    assert ids(f"grid={GRID_OTHER}") == ["p2"]
    assert ids("grid=420502001002") == ["h1", "p1", "p2"]
    assert ids("state=confirmed") == []
    assert ids("since=2999-01-01T00:00:00%2B08:00") == []
    assert ids("until=2999-01-01T00:00:00") == ["h1", "p1", "p2"]
    assert login("w3").get("/api/v1/submissions").json["items"][0]["worker"] == "w3"
    assert len(login("w3").get("/api/v1/submissions").json["items"]) == 2
    assert sup.get("/api/v1/submissions?grid=42").status_code == 422
    assert sup.get("/api/v1/submissions?state=lost").status_code == 422


# --- photos ------------------------------------------------------------------------

PNG = (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17
       + b"\x00\x00\x00\x00IEND\xaeB`\x82")
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100 + b"\xff\xd9"


def test_photos_are_content_addressed_and_listed(app, login):
    w3 = login("w3")
    sid = w3.submit(item("ph")).json["results"][0]["id"]
    url = f"/api/v1/submissions/{sid}/photos"
    first = w3.post(url, data=JPEG, content_type="image/jpeg")
    assert first.status_code == 201, first.json
    again = w3.post(url, data=JPEG, content_type="image/jpeg")
    assert again.json["sha256"] == first.json["sha256"]
    assert w3.post(url, data=PNG, content_type="image/png").status_code == 201
    listed = w3.get(f"/api/v1/submissions/{sid}").json["photos"]
    assert [p["content_type"] for p in listed] == ["image/jpeg", "image/png"]
    image = login("sup").get(listed[0]["url"])
    assert image.status_code == 200 and image.data == JPEG
    assert image.headers["Content-Type"] == "image/jpeg"
    image.close()
    photo_dir = app.extensions["gridcollect"].photo_dir
    assert len([p for p in photo_dir.rglob("*") if p.is_file()]) == 2


@pytest.mark.parametrize("body, content_type, status", [
    (b"GIF89a" + b"\x00" * 20, "image/gif", 415),
    (b"not an image", "image/jpeg", 422),
    (JPEG[:50], "image/jpeg", 422),  # cut off in transit
    (PNG, "image/jpeg", 422),  # says JPEG, is PNG
])
def test_bad_photos_are_refused(login, body, content_type, status):
    w3 = login("w3")
    sid = w3.submit(item("ph")).json["results"][0]["id"]
    response = w3.post(f"/api/v1/submissions/{sid}/photos", data=body,
                       content_type=content_type)
    assert response.status_code == status
    assert w3.get(f"/api/v1/submissions/{sid}").json["photos"] == []


def test_photo_size_limit(tmp_path):
    from conftest import FAST_HASH, PASSWORD, seed
    from gridcollect.app import create_app
    app = create_app({"DATABASE": str(tmp_path / "p.db"), "SCRYPT_N": FAST_HASH,
                      "MAX_PHOTO_BYTES": 1000})
    seed(app.extensions["gridcollect"].db())
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": "w3", "password": PASSWORD}
                        ).json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    sid = client.post("/api/v1/submissions", json={"submissions": [item("p")]},
                      headers=headers).json["results"][0]["id"]
    big = b"\xff\xd8\xff" + b"\x00" * 2000 + b"\xff\xd9"
    response = client.post(f"/api/v1/submissions/{sid}/photos", data=big,
                           content_type="image/jpeg", headers=headers)
    assert response.status_code == 413 and response.json["error"] == "too_large"


def test_photos_only_on_own_pending_submissions(login):
    sid = login("w3").submit(item("ph")).json["results"][0]["id"]
    login("sup").post(f"/api/v1/submissions/{sid}/review", json={"action": "confirm"})
    closed = login("w3").post(f"/api/v1/submissions/{sid}/photos", data=JPEG,
                              content_type="image/jpeg")
    assert closed.status_code == 409 and closed.json["error"] == "photo_closed"
    other = login("w4").post(f"/api/v1/submissions/{sid}/photos", data=JPEG,
                             content_type="image/jpeg")
    assert other.status_code == 404


def test_a_photo_racing_a_review_is_refused(login, db, monkeypatch):
    """The supervisor confirms while the photo file is being written: 409, not listed."""
    from gridcollect import store, workflow
    sid = login("w3").submit(item("ph")).json["results"][0]["id"]
    real_fsync = workflow.os.fsync

    def fsync_then_review(fd):
        real_fsync(fd)
        with store.write(db):
            store.set_reviews(db, [(sid, "pending", "confirmed", "sup",
                                    "2026-11-21T10:00:00.000+08:00", None, None, None)])

    monkeypatch.setattr(workflow.os, "fsync", fsync_then_review)
    response = login("w3").post(f"/api/v1/submissions/{sid}/photos", data=JPEG,
                                content_type="image/jpeg")
    assert response.status_code == 409 and response.json["error"] == "photo_closed"
    assert login("w3").get(f"/api/v1/submissions/{sid}").json["photos"] == []


@pytest.mark.parametrize("action", ["upsert", "retire"])
@pytest.mark.parametrize("value", [["x"], {"a": 1}, 420502198001010011])
def test_a_natural_key_of_the_wrong_type_is_invalid(login, action, value):
    w3 = login("w3")
    sid = w3.submit(item("a", person(1))).json["results"][0]["id"]
    login("sup").post(f"/api/v1/submissions/{sid}/review",  # so returned ones are looked up
                      json={"action": "return", "note": "请核实"})
    response = w3.submit(item("b", person(1, id_number=value), action=action))
    assert response.status_code == 200
    [result] = response.json["results"]
    assert result["status"] == "invalid"
    assert [e["field"] for e in result["errors"]] == ["id_number"]


@pytest.mark.parametrize("path, value", [
    ("/api/v1/submissions", 10 ** 20), ("/api/v1/submissions", -1),
    ("/api/v1/submissions", 0), ("/api/v1/submissions", 1.5), ("/api/v1/submissions", "7"),
    ("/api/v1/audit", 2 ** 63), ("/api/v1/grids", "\ud800"), ("/api/v1/grids", "../x"),
    ("/api/v1/grids", 420502001002003),
])
def test_a_cursor_we_did_not_make_is_bad_cursor(login, path, value):
    import base64
    cursor = base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    response = login("admin").get(f"{path}?cursor={cursor}")
    assert response.status_code == 400, response.json
    assert response.json["error"] == "bad_cursor" and response.json["errors"] == {}


def test_submissions_are_audited(login):
    sid = login("w3").submit(item("au")).json["results"][0]["id"]
    entries = login("admin").get(f"/api/v1/audit?object_type=submission&object_id={sid}").json
    assert [(e["actor"], e["action"]) for e in entries["items"]] == [("w3", "submit")]
    assert entries["items"][0]["detail"]["client_id"] == "au"
    json.dumps(entries)  # plain JSON
