"""The five findings of the outside security review (issue 17), each tried again as the
attacker tried it: over real HTTP against ``python server.py`` (gunicorn) on a real
SQLite file, with two supervisors of different streets."""
import csv
import datetime
import io
import re

import pytest
from live import PASSWORD, Phone, Server, cli, log_problems, make_city

from conftest import GRID_CODE, GRID_FAR, event, id_number, item, person
from gridcollect import clock, ids, store

KEY = id_number(1)
OWNED = person(1, phone="13907171234", special_groups=["独居老人"])
CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}\+08:00\Z")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    folder = tmp_path_factory.mktemp("review")
    db = make_city(folder)
    server = Server(db, folder / "server.log")
    yield server, db
    server.stop()
    assert log_problems(folder / "server.log") == []


@pytest.fixture(scope="module")
def phones(city):
    server, _ = city
    return {name: Phone(server.url, name) for name in
            ("w3", "wfar", "sup", "supfar", "analyst", "admin")}


def send(phone, *items):
    response = phone.post("/submissions", json={"submissions": list(items)})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def confirm(phone, sid):
    response = phone.post(f"/submissions/{sid}/review", json={"action": "confirm"})
    assert response.status_code == 200, response.text
    return response.json()


def send_and_confirm(worker, supervisor, *items):
    results = send(worker, *items)
    assert {r["status"] for r in results} == {"accepted"}, results
    return [confirm(supervisor, r["id"]) for r in results]


def credit_code(body) -> str:
    code = "91420502" + body + ids.org_code_check_character(body)
    return code + ids.uscc_check_character(code + "0")


# 1. record takeover across grids (high) --------------------------------------------------

@pytest.mark.parametrize("record_type, key, owned, taken", [
    ("person", KEY, OWNED, person(1, name="冒名", phone="13600000000")),
    ("organization", credit_code("MA4K3L5P"),
     {"uscc": credit_code("MA4K3L5P"), "name": "宜昌某某商贸有限公司", "address": "西陵区某路 8 号",
      "phone": "13907170000", "legal_rep_name": "李四", "legal_rep_id_number": id_number(2)},
     {"uscc": credit_code("MA4K3L5P"), "name": "冒名公司", "address": "某地"}),
])
def test_knowing_a_key_takes_no_record_from_another_grid(phones, record_type, key, owned,
                                                         taken):
    w3, sup, wfar, supfar = (phones[n] for n in ("w3", "sup", "wfar", "supfar"))
    send_and_confirm(w3, sup, item(f"own-{record_type}", owned, record_type=record_type))
    [attempt] = send(wfar, item(f"take-{record_type}", taken, record_type=record_type,
                                grid_code=GRID_FAR))
    reviewed = confirm(supfar, attempt["id"])  # wfar's own supervisor sees nothing unusual
    assert reviewed["state"] == "awaiting_move" and reviewed["conflict"] is None
    for phone in (wfar, supfar):  # nothing to read through any route
        assert phone.get(f"/records/{record_type}/{key}").status_code == 404
        assert key not in phone.get(f"/records/{record_type}").text
        seen = phone.get(f"/submissions/{attempt['id']}").json()
        assert seen["data"] == taken and seen["conflict"] is None
    # a retire from there finds nothing either
    [retire] = send(wfar, item(f"retire-{record_type}", {list(owned)[0]: key},
                               record_type=record_type, grid_code=GRID_FAR, action="retire"))
    assert confirm(supfar, retire["id"])["conflict"] == {"reason": "no_record", "version": 0}
    # the owning side still has it, and sees the request in its queue
    for phone in (w3, sup):
        record = phone.get(f"/records/{record_type}/{key}")
        assert record.status_code == 200 and record.json()["data"] == owned
    [move] = [m for m in sup.get("/moves").json()["items"] if m["key"] == key]
    assert (move["from_grid"], move["to_grid"], move["state"]) == (GRID_CODE, GRID_FAR, "open")
    refused = sup.post(f"/moves/{move['id']}", json={"action": "refuse", "note": "未搬迁"})
    assert refused.status_code == 200 and refused.json()["state"] == "refused"
    assert wfar.get(f"/submissions/{attempt['id']}").json()["state"] == "rejected"
    assert w3.get(f"/records/{record_type}/{key}").json()["data"] == owned
    assert wfar.get(f"/records/{record_type}/{key}").status_code == 404


def test_a_real_move_lands_once_the_owning_grid_agrees(phones):
    w3, sup, wfar, supfar = (phones[n] for n in ("w3", "sup", "wfar", "supfar"))
    send_and_confirm(w3, sup, item("mover", person(3)))
    [moved] = send(wfar, item("moved-in", person(3, residence_type="2"), grid_code=GRID_FAR))
    assert confirm(supfar, moved["id"])["state"] == "awaiting_move"
    accepted = sup.post(f"/moves/{moved['id']}", json={"action": "accept"})
    assert accepted.status_code == 200 and accepted.json()["state"] == "accepted"
    record = wfar.get(f"/records/person/{id_number(3)}").json()
    assert record["grid_code"] == GRID_FAR and record["history"][-1]["moved_from"] == GRID_CODE
    assert w3.get(f"/records/person/{id_number(3)}").status_code == 404


# 2. existence oracle (medium) ----------------------------------------------------------------

def test_a_base_version_tells_nothing_of_a_record_out_of_scope(phones):
    w3, sup, wfar, supfar = (phones[n] for n in ("w3", "sup", "wfar", "supfar"))
    send_and_confirm(w3, sup, item("oracle-own", person(4)))
    answers = {}
    for name, data in (("elsewhere", person(4)), ("nowhere", person(5))):
        [sent] = send(wfar, item(f"oracle-{name}", data, grid_code=GRID_FAR, base_version=1))
        answers[name] = confirm(supfar, sent["id"])
    assert answers["elsewhere"]["state"] == answers["nowhere"]["state"] == "conflict"
    assert answers["elsewhere"]["conflict"] == answers["nowhere"]["conflict"] == {
        "reason": "stale_base_version", "version": 0}


# 3. timestamps that break exports (medium) -------------------------------------------------------

def test_timestamps_are_stored_in_one_form_and_exports_keep_their_shape(city, phones):
    server, db_path = city
    w3, sup, admin, analyst = (phones[n] for n in ("w3", "sup", "admin", "analyst"))
    refused = send(w3, item("ts-comma-offset", event(occurred_at="2026-12-01T10:00:00,-08:00"),
                            record_type="event"),
                   item("ts-basic", event(occurred_at="20261201T100000"), record_type="event"))
    assert [(r["status"], r["errors"][0]["field"], r["errors"][0]["code"]) for r in refused] \
        == [("invalid", "occurred_at", "timestamp")] * 2
    sent = {"2026-12-01T10:00:00,5": "2026-12-01T10:00:00.500+08:00",
            "2026-12-01 02:00:00Z": "2026-12-01T10:00:00.000+08:00",
            "２０２６-１２-０１T１０:００": "2026-12-01T10:00:00.000+08:00",
            "2026-12-01T10:00:00-08:00": "2026-12-02T02:00:00.000+08:00"}
    stored = send_and_confirm(w3, sup, *[item(f"ts-{i}", event(occurred_at=text),
                                              record_type="event")
                                         for i, text in enumerate(sent)])
    assert [s["data"]["occurred_at"] for s in stored] == list(sent.values())
    # a value no check would let in, written straight into the master table: the export
    # quotes and neutralises it all the same (no column is trusted to be well formed)
    db = store.connect(db_path)
    with store.write(db):
        store.put_records(db, [{
            "record_type": "event", "key": "999999", "grid_code": GRID_CODE, "version": 1,
            "retired": False, "data": {**event(), "occurred_at": "-1+1,2026"},
            "created_at": "2026-11-20T10:00:00.000+08:00",
            "updated_at": "2026-11-20T10:00:00.000+08:00", "seq": 10 ** 9}])
    db.close()
    release = analyst.post("/releases", json={"note": "timestamps"}).json()["id"]
    for phone in (admin, analyst):
        text = phone.get(f"/releases/{release}/tables/event.csv").content.decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text)))
        header, body = rows[0], rows[1:]
        assert len(body) == len(stored) + 1
        assert all(len(row) == len(header) for row in body), rows
        cells = [cell for row in body for cell in row]
        assert [c for c in cells if c.startswith(FORMULA_START)] == []
        column = [row[header.index("occurred_at")] for row in body]
        assert "'-1+1,2026" in column
        assert all(CANONICAL.match(v) for v in column if v != "'-1+1,2026"), column


def test_a_timestamp_outside_the_grammar_is_refused_in_the_envelope_too(phones):
    response = phones["w3"].post("/submissions", json={"submissions": [
        item("envelope", person(6), collected_at="2026-12-01T10:00:00,-08:00")]})
    assert response.status_code == 422 and "collected_at" in response.json()["errors"][
        "submissions"]["0"]


# 4. mobile numbers recoverable by joining tables (low) -------------------------------------------

def test_a_masked_reader_never_sees_a_mobile_number(phones):
    w3, sup, analyst = phones["w3"], phones["sup"], phones["analyst"]
    org = {"uscc": credit_code("MA4K3L6Q"), "name": "宜昌某某物业有限公司",
           "address": "西陵区某路 9 号", "phone": "13907171234", "legal_rep_name": "刘德明",
           "legal_rep_id_number": id_number(7)}
    send_and_confirm(w3, sup, item("mobile-org", org, record_type="organization"),
                     item("mobile-person", person(7, phone="13907171234")))
    shown = analyst.get(f"/records/organization?grid={GRID_CODE}").json()["items"]
    [found] = [o for o in shown if o["data"]["name"] == org["name"]]
    assert found["data"]["phone"] == "139****1234"
    release = analyst.post("/releases", json={"note": "mobiles"}).json()["id"]
    for table in ("organization", "person"):
        text = analyst.get(f"/releases/{release}/tables/{table}.csv").content.decode()
        assert "13907171234" not in text and "139****1234" in text


# 5. quieter gaps (low) ---------------------------------------------------------------------------

def test_exports_and_history_reads_are_audited(phones):
    w3, sup, analyst, admin = (phones[n] for n in ("w3", "sup", "analyst", "admin"))
    send_and_confirm(w3, sup, item("audited", person(8)))
    release = analyst.post("/releases", json={"note": "audit"}).json()["id"]
    export = analyst.get(f"/releases/{release}/tables/person.csv")
    rows = len(export.content.decode("utf-8-sig").strip().splitlines()) - 1
    [entry] = admin.get(f"/audit?action=export&actor=analyst&object_id={release}").json()[
        "items"]
    assert entry["detail"] == {"table": "person", "format": "csv", "labels": False,
                               "headers": "en", "masked": True, "rows": rows}
    assert sup.get(f"/records/person/{id_number(8)}").status_code == 200
    [read] = admin.get(f"/audit?action=record_read&object_id=person/{id_number(8)}").json()[
        "items"]
    assert read["actor"] == "sup" and read["detail"]["grid_code"] == GRID_CODE
    listed = w3.get("/records/person", params={"special_groups": "独居老人", "limit": 7})
    assert listed.status_code == 200
    [page] = admin.get("/audit?action=records_list&actor=w3&limit=1").json()["items"]
    assert page["object_id"] == "person" and page["detail"]["filters"] == {
        "special_groups": ["独居老人"]}
    assert page["detail"]["rows"] == len(listed.json()["items"])


def test_an_old_release_gives_no_mobile_number_away_either(city, phones):
    """A release made when an organisation's phone was still internal: its dictionary
    says so, and the export masks it all the same."""
    import sqlite3
    analyst = phones["analyst"]
    org = {"uscc": credit_code("MA4K3L7R"), "name": "宜昌某某旧公司", "address": "西陵区某路 10 号",
           "phone": "13907175678"}
    send_and_confirm(phones["w3"], phones["sup"], item("old-org", org, record_type="organization"))
    release = analyst.post("/releases", json={"note": "before the change"}).json()
    db = store.connect(city[1])  # (the API does not tell where the file is)
    file = store.get_release(db, release["id"])["file"]
    db.close()
    with sqlite3.connect(file) as old:  # as releases were written before issue 17
        old.execute("UPDATE _columns SET sensitivity = 'internal' WHERE column = 'phone'")
    old.close()
    text = analyst.get(f"/releases/{release['id']}/tables/organization.csv").content.decode()
    assert "13907175678" not in text and "139****5678" in text
    dictionary = analyst.get(f"/releases/{release['id']}/dictionary").json()
    [phone] = [c for c in dictionary["tables"]["organization"] if c["column"] == "phone"]
    assert phone["sensitivity"] == "personal"


@pytest.mark.parametrize("days", ["0", "36501", "999999999"])
def test_the_collect_window_is_bounded(days):
    import subprocess
    import sys
    from live import ROOT
    result = subprocess.run([sys.executable, "server.py", "--collect-window", days,
                             "--db", "/nonexistent/never.db"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "--collect-window must be 1 to 36500" in result.stderr


@pytest.fixture(scope="module")
def weakling(phones):
    """A user whose password the cases try to change to weak ones."""
    made = phones["admin"].post("/users", json={"username": "weakling", "role": "worker",
                                                "scope": [GRID_CODE], "password": PASSWORD})
    assert made.status_code == 201, made.text
    return "weakling"


@pytest.mark.parametrize("password, problem", [
    (" " * 8, "not spaces"), ("  ab cd  ef  ", "not spaces"), ("12121212", "different"),
    ("password", "common"), ("PassWord", "common"), ("qq123456", "common"),
    ("１２３４５６７８", "common"), ("{user}", "username"), ("{user}2026", "username")])
def test_a_password_must_be_a_real_one(phones, weakling, password, problem):
    admin = phones["admin"]
    response = admin.post("/users", json={"username": "newcomer", "role": "worker",
                                          "scope": [GRID_CODE],
                                          "password": password.format(user="newcomer")})
    assert response.status_code == 422 and response.json()["error"] == "bad_account"
    assert problem in response.json()["message"]
    change = admin.session.patch(f"{admin.url}/users/{weakling}",
                                 json={"password": password.format(user=weakling)})
    assert change.status_code == 422 and problem in change.json()["message"]
    assert Phone(admin.url, weakling).get("/me").ok  # its password is what it was


def test_the_command_line_refuses_a_weak_password_too(city):
    _, db = city
    result = cli("users", "add", "cliweak", "--role", "worker", f"--scope={GRID_CODE}",
                 "--password-stdin", stdin=" " * 8 + "\n", db=db, check=False)
    assert result.returncode != 0 and "not spaces" in result.stderr
    assert cli("users", "add", "clistrong", "--role", "worker", f"--scope={GRID_CODE}",
               "--password-stdin", stdin=PASSWORD + "\n", db=db)


def test_an_entry_collected_implausibly_long_ago_is_refused(phones):
    now = clock.now()
    cases = {"0001-01-01": "invalid", "0001-01-02T00:00:00+08:00": "invalid",
             clock.iso(now - datetime.timedelta(days=366)): "invalid",
             clock.iso(now - datetime.timedelta(days=300)): "accepted"}
    results = send(phones["w3"], *[item(f"old-{i}", person(20 + i), collected_at=at)
                                   for i, at in enumerate(cases)])
    assert [r["status"] for r in results] == list(cases.values())
    for result in results[:3]:
        assert {(e["field"], e["code"]) for e in result["errors"]} == {
            ("collected_at", "too_old")}
