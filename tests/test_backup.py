"""``gridcollect backup PATH``: a consistent copy of a live database, with its photos
and releases, that serves as it was."""
import concurrent.futures
import sqlite3
import threading
import time
import uuid

import pytest
from click.testing import CliRunner
from live import Phone, Server, cli, log_problems, make_city

from conftest import GRID_OTHER, PASSWORD, item, person, send_and_confirm
from gridcollect.cli import main

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100 + b"\xff\xd9"


def rows(path, sql):
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_backup_serves_as_the_original(app, login, tmp_path):
    db_path = app.config["DATABASE"]
    sid = send_and_confirm(login, "b1", person(1))
    pending = login("w3").submit(item("b2", person(2))).json["results"][0]["id"]
    assert login("w3").post(f"/api/v1/submissions/{pending}/photos", data=JPEG,
                            content_type="image/jpeg").status_code == 201
    release = login("analyst").post("/api/v1/releases", json={"note": "q4"}).json
    target = tmp_path / "copy" / "backup.db"
    target.parent.mkdir()

    result = CliRunner().invoke(main, ["backup", str(target), "--db", db_path])
    assert result.exit_code == 0, result.output
    assert "backed up 2 submissions, 1 photos, 1 releases" in result.output
    assert rows(target, "PRAGMA integrity_check") == [("ok",)]

    from gridcollect.app import create_app
    restored = create_app({"DATABASE": str(target), "SCRYPT_N": 16, "TESTING": True})
    client = restored.test_client()

    def headers_of(username):
        token = client.post("/api/v1/auth/token", json={"username": username,
                                                        "password": PASSWORD}).json["token"]
        return {"Authorization": f"Bearer {token}"}

    headers = headers_of("sup")
    assert client.get(f"/api/v1/submissions/{sid}", headers=headers).json["state"] == \
        "confirmed"
    photos = client.get(f"/api/v1/submissions/{pending}", headers=headers).json["photos"]
    photo = client.get(f"/api/v1/submissions/{pending}/photos/{photos[0]['sha256']}",
                       headers=headers)
    assert photo.data == JPEG
    photo.close()
    csv = client.get(f"/api/v1/releases/{release['id']}/tables/person.csv",
                     headers=headers_of("admin"))
    assert csv.status_code == 200 and person(1)["id_number"] in csv.get_data(as_text=True)
    # the copy's release file is its own: the original may be lost
    assert rows(target, "SELECT file FROM releases")[0][0].startswith(f"{target}-releases/")
    audit = rows(db_path, "SELECT action, detail FROM audit WHERE action = 'backup'")
    assert len(audit) == 1 and str(target) in audit[0][1]


@pytest.mark.parametrize("existing", ["", "-photos", "-releases", "-wal"])
def test_a_backup_never_overwrites(app, tmp_path, existing):
    target = tmp_path / "backup.db"
    (tmp_path / f"backup.db{existing}").write_bytes(b"")
    result = CliRunner().invoke(main, ["backup", str(target), "--db", app.config["DATABASE"]])
    assert result.exit_code == 2 and "exists: a backup never overwrites" in result.output


def test_a_backup_into_a_missing_folder_is_refused(app, tmp_path):
    result = CliRunner().invoke(main, ["backup", str(tmp_path / "no" / "b.db"),
                                       "--db", app.config["DATABASE"]])
    assert result.exit_code == 2 and "no such folder" in result.output
    assert not list(tmp_path.glob("no*"))


@pytest.mark.slow
def test_an_online_backup_holds_every_batch_accepted_before_it(tmp_path, figures):
    """Phones keep sending through two server processes while backups are taken; each
    backup holds every batch answered before it began, and no batch in part."""
    db = make_city(tmp_path)
    servers = [Server(db, tmp_path / f"server{i}.log") for i in (1, 2)]
    answered = []  # (time answered, client ids), of batches answered `accepted`
    stop = threading.Event()

    def phone(server):
        sender = Phone(server.url, "w4")
        while not stop.is_set():
            ids = [str(uuid.uuid4()) for _ in range(20)]
            batch = {"submissions": [item(i, person(n), grid_code=GRID_OTHER)
                                     for n, i in enumerate(ids)]}
            response = sender.post("/submissions", json=batch)
            assert response.status_code == 200, response.text
            assert {r["status"] for r in response.json()["results"]} == {"accepted"}
            answered.append((time.monotonic(), ids))

    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            phones = [pool.submit(phone, servers[i % 2]) for i in range(4)]
            backups = []
            for n in range(3):
                time.sleep(1.0)
                began = time.monotonic()
                cli("backup", str(tmp_path / f"backup{n}.db"), db=db)
                backups.append((began, tmp_path / f"backup{n}.db"))
            stop.set()
            for future in phones:
                future.result()
    finally:
        for server in servers:
            server.stop()
    assert log_problems(*(server.log_path for server in servers)) == []
    for began, path in backups:
        assert rows(path, "PRAGMA integrity_check") == [("ok",)]
        stored = {client_id for (client_id,) in rows(path, "SELECT client_id FROM submissions")}
        before = [ids for at, ids in answered if at < began]
        assert before and all(set(ids) <= stored for ids in before)
        for _, ids in answered:  # a batch is in a backup whole or not at all
            assert len(set(ids) & stored) in (0, len(ids))
        figures("backups taken while writing", 1)
        figures("submissions accepted before a backup and found in it",
                sum(len(ids) for ids in before))
    # and a backup serves: a server on the last copy answers for its submissions
    began, path = backups[-1]
    server = Server(path, tmp_path / "restored.log")
    try:
        found = Phone(server.url, "sup").get("/submissions?limit=1").json()["items"]
        assert found and found[0]["grid_code"] == GRID_OTHER
    finally:
        server.stop()
