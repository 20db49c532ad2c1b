"""What a newcomer tripped over (issue 18), each tried again from the outside: the
installed ``gridcollect`` command in subprocesses, and real HTTP against ``gridcollect
serve`` (gunicorn) on a real SQLite file."""
import csv
import gzip
import io
import json
import os
import pathlib
import pty
import re
import socket
import subprocess
import sys
import time

import pytest
import requests
from live import PASSWORD, Phone, cli, free_port, log_problems, make_city

from conftest import GRID_CODE, edit_yaml, item, person

GRIDCOLLECT = str(pathlib.Path(sys.executable).with_name("gridcollect"))
ROOT = pathlib.Path(__file__).resolve().parent.parent


def run(*args, cwd=None, env=None, stdin=None):
    return subprocess.run([GRIDCOLLECT, *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, input=stdin, timeout=120)


class Serve:
    """``gridcollect serve`` (the installed command) on a free port."""

    def __init__(self, db, log, *options, env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        self.log_path = pathlib.Path(log)
        with open(log, "ab") as output:  # the child has its own copy
            self.process = subprocess.Popen(
                [GRIDCOLLECT, "serve", "--port", str(self.port), "--db", str(db),
                 "--workers", "1", *options], stdout=output, stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})}, start_new_session=True)
        deadline = time.monotonic() + 60
        while "gridcollect serving" not in self.log_path.read_text(errors="replace"):
            assert self.process.poll() is None and time.monotonic() < deadline, \
                self.log_path.read_text()
            time.sleep(0.1)

    def stop(self):
        os.killpg(self.process.pid, 15)
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    folder = tmp_path_factory.mktemp("newcomer")
    db = make_city(folder)
    standards = folder / "standards"
    import shutil
    shutil.copytree(ROOT / "field_standards", standards)
    edit_yaml(standards / "house.yaml",
              lambda d: d["fields"]["address"]["label"].update(zh="门牌地址"))
    server = Serve(db, folder / "server.log", env={"GRIDCOLLECT_STANDARDS": str(standards)})
    yield server, db, folder
    server.stop()
    assert log_problems(folder / "server.log") == []


def raw_http(port, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


# --- 1. the server is a command; a city's own standards --------------------------------

def test_serve_uses_the_citys_standards_from_the_environment(city):
    server, _, _ = city
    standards = Phone(server.url, "w3").get(f"/grids/{GRID_CODE}/standards").json()
    address = next(f for f in standards["standards"]["house"]["fields"]
                   if f["name"] == "address")
    assert address["label"]["zh"] == "门牌地址"


def test_a_port_in_use_is_refused_before_anything_is_written(city, tmp_path):
    server, _, _ = city
    result = run("serve", "--port", str(server.port), "--db", str(tmp_path / "new.db"))
    assert result.returncode == 2
    assert f"port {server.port} on 127.0.0.1 is in use" in result.stderr
    assert "serving" not in result.stdout and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--db", "/nonexistent-folder/x.db"], "the folder /nonexistent-folder does not exist"),
    (["--standards", "/nonexistent-standards"], "no such standards folder"),
    (["--collect-window", "0"], "--collect-window must be 1 to 36500 days"),
    (["--trusted-proxies", "9"], "--trusted-proxies must be 0 to 5"),
])
def test_serve_refuses_a_start_that_cannot_succeed(tmp_path, args, message):
    result = run("serve", "--port", str(free_port()), *(
        args if "--db" in args else ["--db", str(tmp_path / "x.db"), *args]))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_server_py_is_the_same_command():
    result = subprocess.run([sys.executable, "server.py", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "--standards" in result.stdout and "--trusted-proxies" in result.stdout


# --- 2. gzip both ways; format: date ----------------------------------------------------

def test_answers_are_gzipped_when_asked_and_etags_still_work(city):
    server, _, _ = city
    phone = Phone(server.url, "w3")
    plain = phone.get(f"/grids/{GRID_CODE}/standards", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    packed = phone.session.get(f"{server.url}/grids/{GRID_CODE}/standards", stream=True,
                               headers={"Accept-Encoding": "gzip"})
    body = packed.raw.read()
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert len(body) < len(plain.content) / 2
    assert json.loads(gzip.decompress(body)) == plain.json()
    assert packed.headers["ETag"] == plain.headers["ETag"]  # weak: one document
    for encoding in ("gzip", "identity"):
        again = phone.get(f"/grids/{GRID_CODE}/standards", headers={
            "If-None-Match": plain.headers["ETag"], "Accept-Encoding": encoding})
        assert again.status_code == 304


def test_a_csv_export_streams_gzipped(city):
    server, db, _ = city
    cli("release", "--note", "gzip", db=db)
    admin = Phone(server.url, "admin")
    release = admin.get("/releases").json()["items"][0]["id"]
    plain = admin.get(f"/releases/{release}/tables/person.csv",
                      headers={"Accept-Encoding": "identity"})
    packed = admin.session.get(f"{server.url}/releases/{release}/tables/person.csv",
                               stream=True, headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.raw.read()) == plain.content


def test_a_gzipped_batch_is_accepted_within_the_limit_after_decompression(city):
    server, _, _ = city
    phone = Phone(server.url, "w3")
    body = json.dumps({"submissions": [item("gz-1", person(181))]}, default=str).encode()
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    sent = phone.post("/submissions", data=gzip.compress(body), headers=headers)
    assert sent.status_code == 200 and sent.json()["results"][0]["status"] == "accepted"
    bomb = gzip.compress(b'{"submissions": [' + b" " * (9 * 1024 * 1024) + b"]}")
    assert len(bomb) < 100_000
    refused = phone.post("/submissions", data=bomb, headers=headers)
    assert refused.status_code == 413 and refused.json()["error"] == "too_large"
    broken = phone.post("/submissions", data=b"not gzip at all", headers=headers)
    assert broken.status_code == 400 and broken.json()["error"] == "bad_body"
    cut = phone.post("/submissions", data=gzip.compress(body)[:-12], headers=headers)
    assert cut.status_code == 400 and cut.json()["error"] == "bad_body"
    other = phone.post("/submissions", data=body, headers={**headers, "Content-Encoding": "br"})
    assert other.status_code == 415 and other.json()["error"] == "unsupported_encoding"


def test_json_schema_says_which_strings_are_dates(city):
    server, _, _ = city
    schemas = Phone(server.url, "w3").get(
        f"/grids/{GRID_CODE}/standards?format=json-schema").json()["schemas"]
    assert schemas["person"]["properties"]["birth_date"]["format"] == "date"
    assert schemas["event"]["properties"]["occurred_at"]["format"] == "date-time"
    assert "format" not in schemas["person"]["properties"]["name"]


@pytest.mark.parametrize("request_bytes, status, error", [
    ("GET /api/v1/records/person?name=张三 HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 400,
     "bad_request"),
    (b"GET /api/v1/" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    (b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-H%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431, "headers_too_large"),
])
def test_gunicorns_own_refusals_come_in_the_api_shape(city, request_bytes, status, error):
    server, _, _ = city
    answer = raw_http(server.port, request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), head
    assert b"Content-Type: application/json" in head
    assert b"X-Content-Type-Options: nosniff" in head
    assert b"Content-Security-Policy: default-src 'none'" in head
    problem = json.loads(body)
    assert problem["code"] == status and problem["error"] == error and problem["errors"] == {}
    assert "张三" not in problem["message"]  # the request's text is not echoed


# --- 3. unlocking; trusted proxies ----------------------------------------------------------

def _fail_five_times(url, username):
    for _ in range(5):
        assert requests.post(f"{url}/auth/token", json={
            "username": username, "password": "wrong password"}).status_code == 401
    locked = requests.post(f"{url}/auth/token", json={"username": username,
                                                      "password": PASSWORD})
    assert locked.status_code == 429


def test_an_admin_unlocks_a_locked_out_worker_from_the_cli_and_the_api(city):
    server, db, _ = city
    _fail_five_times(server.url, "w4")
    assert "w4: unlocked (5 failed logins forgotten)" in cli("users", "unlock", "w4", db=db)
    Phone(server.url, "w4")  # logs in at once
    _fail_five_times(server.url, "w4")
    admin = Phone(server.url, "admin")
    answer = admin.post("/users/w4/unlock")
    assert answer.status_code == 200
    assert answer.json() == {"username": "w4", "failures_cleared": 5}
    Phone(server.url, "w4")
    assert admin.post("/users/nobody/unlock").status_code == 404
    entries = admin.get("/audit?action=user_unlock").json()["items"]
    assert [(e["object_id"], e["detail"]["failures_cleared"]) for e in entries] == [
        ("w4", 5), ("w4", 5)]
    assert entries[0]["actor"] == "admin" and entries[1]["actor"].startswith("cli")


def test_a_new_password_also_unlocks(city):
    server, db, _ = city
    _fail_five_times(server.url, "wfar")
    cli("users", "passwd", "wfar", "--password-stdin", stdin="another e2e password\n", db=db)
    Phone(server.url, "wfar", password="another e2e password")


def test_trusted_proxies_decide_which_address_a_login_comes_from(tmp_path):
    db = make_city(tmp_path)
    forwarded = {"X-Forwarded-For": "10.1.2.3"}
    for option, address in ((), "127.0.0.1"), (("--trusted-proxies", "1"), "10.1.2.3"):
        server = Serve(db, tmp_path / f"server-{address}.log", *option)
        try:
            requests.post(f"{server.url}/auth/token", headers=forwarded,
                          json={"username": "w3", "password": "wrong password"})
            admin = Phone(server.url, "admin")
            failed = admin.get("/audit?action=login_failed").json()["items"][0]
            assert failed["detail"]["address"] == address
            cli("users", "unlock", "w3", db=db)
        finally:
            server.stop()


# --- 4. crashes and misleading messages -----------------------------------------------------

def test_init_db_in_a_missing_folder_is_one_clear_line():
    result = run("init-db", "--db", "/nonexistent-folder/x.db")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "the folder /nonexistent-folder does not exist" in result.stderr


def test_a_file_that_is_not_a_database_is_one_clear_line(tmp_path):
    (tmp_path / "notes.db").write_text("not a database " * 100)
    result = run("users", "list", "--db", str(tmp_path / "notes.db"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "not a database" in result.stderr


def test_backup_creates_missing_parent_folders(city):
    _, db, folder = city
    target = folder / "backups" / "2026" / "12-03"
    result = run("backup", str(target), "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert (target / db.name).is_file()


def test_export_refuses_to_write_xlsx_to_a_terminal(city):
    _, db, _ = city
    cli("release", "--note", "tty", db=db)
    leader, follower = pty.openpty()
    try:
        result = subprocess.run([GRIDCOLLECT, "export", "latest", "person", "--format", "xlsx",
                                 "--db", str(db)], stdout=follower, stderr=subprocess.PIPE,
                                text=True, timeout=60)
    finally:
        os.close(follower)
        os.close(leader)
    assert result.returncode == 2
    assert "an XLSX file is binary: write it to a file with -o" in result.stderr
    piped = subprocess.run([GRIDCOLLECT, "export", "latest", "person", "--format", "xlsx",
                            "--db", str(db)], capture_output=True, timeout=60)
    assert piped.returncode == 0 and piped.stdout[:2] == b"PK"  # a pipe gets the file


def test_an_empty_photo_is_said_to_be_empty(city):
    server, _, _ = city
    phone = Phone(server.url, "w3")
    sid = phone.post("/submissions", json={"submissions": [item("photo-empty", person(182))]},
                     ).json()["results"][0]["id"]
    answer = phone.post(f"/submissions/{sid}/photos", data=b"",
                        headers={"Content-Type": "image/jpeg"})
    assert answer.status_code == 422 and answer.json()["error"] == "empty_photo"
    assert "empty" in answer.json()["message"]


def test_a_field_name_is_not_run_into_the_chinese_message(tmp_path):
    path = tmp_path / "p.csv"
    row = person(1)
    path.write_text(",".join([*row, "versio"]) + "\n" + ",".join([*row.values(), "1"]) + "\n",
                    encoding="utf-8")
    result = run("validate", str(path), "--type", "person", "--format", "json")
    errors = json.loads(result.stdout)["rows"][0]["errors"]
    assert errors == [{"field": "versio", "code": "unknown_field",
                       "message": "versio 不是本标准定义的字段 / versio: not a field of this "
                                  "standard"}]


# --- 6. round trips ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def released(city):
    server, db, folder = city
    sup = Phone(server.url, "sup")
    w3 = Phone(server.url, "w3")
    sent = w3.post("/submissions", json={"submissions": [
        item(f"trip-{i}", person(200 + i, ethnicity="01")) for i in range(3)]}, ).json()
    for result in sent["results"]:
        assert sup.post(f"/submissions/{result['id']}/review",
                        json={"action": "confirm"}).status_code == 200
    made = cli("release", "--note", "round trip", db=db)
    return db, folder, int(made.split()[1].rstrip(":"))


@pytest.mark.parametrize("headers", ["en", "zh"])
@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_an_export_validates_and_imports_as_it_is(released, headers, fmt, tmp_path):
    db, _, release = released
    path = tmp_path / f"persons.{fmt}"
    cli("export", str(release), "person", "--format", fmt, "--labels", "--headers", headers,
        "-o", str(path), db=db)
    result = run("validate", str(path), "--type", "person")
    assert result.returncode == 0, result.stdout
    rows, valid = map(int, re.match(r"(\d+) rows: (\d+) valid, 0 invalid",
                                    result.stdout).groups())
    assert rows == valid >= 3  # the three confirmed above, at least
    imported = run("import", str(path), "--type", "person", "--grid", GRID_CODE,
                   "--worker", "w3", "--db", str(db))
    assert imported.returncode == 0, imported.stdout
    assert re.match(rf"{rows} rows: \d+ accepted, \d+ already imported, 0 invalid, "
                    rf"0 forbidden", imported.stdout), imported.stdout


def test_chinese_headers_come_from_the_dictionary(released):
    db, _, release = released
    text = cli("export", str(release), "person", "--labels", "--headers", "zh", db=db)
    header = next(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert header[:6] == ["主键", "网格编码", "版本", "首次确认时间", "最后更新时间", "公民身份号码"]
    assert "民族" in header and "民族（含义）" in header


def test_http_export_takes_headers_zh(city, released):
    server, _, release = city[0], None, released[2]
    admin = Phone(server.url, "admin")
    answer = admin.get(f"/releases/{release}/tables/house.csv?headers=zh")
    assert answer.status_code == 200
    assert answer.text.lstrip("\ufeff").split("\r\n")[0].split(",")[:3] == [
        "主键", "网格编码", "版本"]
    assert admin.get(f"/releases/{release}/tables/house.csv?headers=fr").status_code == 422


def test_releases_are_listed(released):
    db, _, release = released
    lines = cli("releases", db=db).splitlines()
    assert lines[0] == "id\tcreated_at\tcreated_by\trows\tnote"
    newest = lines[1].split("\t")
    assert newest[0] == str(release) and newest[-1] == "round trip"
    listed = json.loads(cli("releases", "--format", "json", db=db))
    assert listed[0]["id"] == release and listed[0]["counts"]["person"] >= 3


def _mixed_file(path):
    """Rows 2-6 of a spreadsheet: valid, unconvertible (an Excel number), invalid by
    the standard (a wrong check character), valid, invalid by the standard."""
    rows = [person(301), {**person(302), "id_number": "4.20502E+17"},
            {**person(303), "id_number": person(303)["id_number"][:-1] + "0"}, person(304),
            {**person(305), "ethnicity": "77"}]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(person(1)))
        writer.writeheader()
        writer.writerows(rows)


def test_row_numbers_are_what_a_spreadsheet_shows_or_counted_from_the_data(tmp_path):
    path = tmp_path / "mixed.csv"
    _mixed_file(path)
    sheet = json.loads(run("validate", str(path), "--type", "person", "--format",
                           "json").stdout)
    assert [r["row"] for r in sheet["rows"] if not r["valid"]] == [3, 4, 6]
    data = json.loads(run("validate", str(path), "--type", "person", "--format", "json",
                          "--rows", "data").stdout)
    assert [r["row"] for r in data["rows"] if not r["valid"]] == [2, 3, 5]
    text = run("validate", str(path), "--type", "person").stdout
    assert [line.split(":")[1] for line in text.splitlines()[:-1]] == ["3", "4", "6"]


def test_import_lists_invalid_rows_in_the_files_order(city, tmp_path):
    _, db, _ = city
    path = tmp_path / "mixed.csv"
    _mixed_file(path)
    result = run("import", str(path), "--type", "person", "--grid", GRID_CODE,
                 "--worker", "w3", "--db", str(db))
    assert result.returncode == 1
    rows = [line.split(":")[1] for line in result.stdout.splitlines() if ".csv:" in line]
    assert rows == ["3", "4", "6"]
    data = run("import", str(path), "--type", "person", "--grid", GRID_CODE,
               "--worker", "w3", "--rows", "data", "--db", str(db))
    assert [line.split(":")[1] for line in data.stdout.splitlines() if ".csv:" in line] == [
        "2", "3", "5"]


def test_grids_import_reports_every_bad_feature(city, tmp_path):
    _, db, _ = city
    good = {"type": "Polygon", "coordinates": [[[111, 30], [111.1, 30], [111.1, 30.1],
                                                [111, 30], [111, 30]]]}
    features = [
        {"type": "Feature", "properties": {"code": "42050200100", "name": "x"},
         "geometry": good},
        {"type": "Feature", "properties": {"code": "420502001002099", "name": ""},
         "geometry": good},
        {"type": "Feature", "properties": {"code": "420502001002098", "name": "ok",
                                           "street": "甲街道"}, "geometry": good},
        {"type": "Feature", "properties": {"code": "420502001003001", "name": "ok",
                                           "street": "乙街道"}, "geometry": good},
    ]
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    result = run("grids", "import", str(path), "--db", str(db))
    assert result.returncode == 2
    assert "feature 1: properties.code must be a 15-digit grid code" in result.stderr
    assert "feature 2 (420502001002099): properties.name" in result.stderr
    assert "feature 4 (420502001003001): area 420502001 is named '乙街道', but '甲街道' " \
           "in feature 3" in result.stderr
    assert "3 problems" in result.stderr


# --- 7. small things ------------------------------------------------------------------------

def test_users_list_has_a_header_and_a_status(city):
    _, db, _ = city
    lines = cli("users", "list", db=db).splitlines()
    assert lines[0] == "username\trole\tscope\tstatus"
    rows = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert rows["admin"][2:] == ["(all)", "active"]
    assert rows["w3"][2:] == [GRID_CODE, "active"]


def test_the_monitor_names_districts_streets_and_communities(tmp_path):
    db = tmp_path / "demo.db"
    server = Serve(db, tmp_path / "server.log", "--demo")
    try:
        log = server.log_path.read_text()
        password = next(line.split()[-1] for line in log.splitlines()
                        if line.strip().startswith("supervisor "))
        sup = Phone(server.url, "supervisor", password=password)
        names = {level: [(a["code"], a["name"]) for a in sup.get(
            f"/monitor/grids?level={level}").json()["items"]]
            for level in ("street", "community")}
        assert names["street"] == [("420502001", "演示街道")]
        assert names["community"] == [("420502001001", "演示街道第一社区"),
                                      ("420502001002", "演示街道第二社区")]
        admin_password = next(line.split()[-1] for line in log.splitlines()
                              if line.strip().startswith("admin "))
        admin = Phone(server.url, "admin", password=admin_password)
        assert admin.get("/monitor/grids?level=district").json()["items"][0]["name"] == "西陵区"
        with_slash = requests.get(f"{server.url}/docs/", allow_redirects=False)
        assert with_slash.status_code == 200 and "swagger-ui" in with_slash.text
    finally:
        server.stop()


def test_masks_do_not_keep_the_values_length(city, released):
    server, _, _ = city
    analyst = Phone(server.url, "analyst")
    records = analyst.get("/records/person?limit=50").json()["items"]
    masked = [r["data"] for r in records if r["key"].endswith(person(200)["id_number"][-4:])]
    assert masked, records
    assert masked[0]["birth_date"] == "***"  # personal, and not a name, ID or phone
    assert masked[0]["name"] == person(200)["name"][0] + "*"
