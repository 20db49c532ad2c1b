"""``gridcollect backup PATH``: a consistent copy of a live database, with its photos
and releases, that serves as it was."""
import concurrent.futures
import hashlib
import pathlib
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

import pytest
from click.testing import CliRunner
from live import Phone, Server, cli, log_problems, make_city

from conftest import GRID_OTHER, PASSWORD, item, person, send_and_confirm
from gridcollect import backup
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
    folder = tmp_path / "backup-2026-11-21"

    result = CliRunner().invoke(main, ["backup", str(folder), "--db", db_path])
    assert result.exit_code == 0, result.output
    assert "backed up 2 submissions, 1 photos, 1 releases" in result.output
    target = folder / "test.db"
    assert f"serve {target}" in result.output
    assert sorted(p.name for p in folder.iterdir()) == ["test.db", "test.db-photos",
                                                       "test.db-releases"]
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
    assert len(audit) == 1 and str(folder) in audit[0][1]


@pytest.mark.parametrize("existing", ["file", "folder"])
def test_a_backup_never_overwrites(app, tmp_path, existing):
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    target = tmp_path / "backup"
    if existing == "file":
        target.write_bytes(b"kept")
    else:
        target.mkdir()
    result = CliRunner().invoke(main, ["backup", str(target), "--db", app.config["DATABASE"]])
    assert result.exit_code == 2 and "exists: a backup goes into a new folder" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup"]


def test_a_backup_into_a_missing_folder_creates_it(app, tmp_path):
    result = CliRunner().invoke(main, ["backup", str(tmp_path / "no" / "b"),
                                       "--db", app.config["DATABASE"]])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "no" / "b" / pathlib.Path(app.config["DATABASE"]).name).is_file()


def test_a_backup_under_a_file_is_refused(app, tmp_path):
    (tmp_path / "a-file").write_text("x")
    result = CliRunner().invoke(main, ["backup", str(tmp_path / "a-file" / "b"),
                                       "--db", app.config["DATABASE"]])
    assert result.exit_code == 2 and "a-file" in result.output


def with_photo(login) -> int:
    sid = login("w3").submit(item("photo", person(2))).json["results"][0]["id"]
    assert login("w3").post(f"/api/v1/submissions/{sid}/photos", data=JPEG,
                            content_type="image/jpeg").status_code == 201
    return sid


def test_what_appears_at_the_target_meanwhile_is_left_alone(app, login, tmp_path,
                                                             monkeypatch):
    """Another backup (or an operator) takes the name while this one copies: this one
    fails, and the other's files are untouched."""
    with_photo(login)
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    target = tmp_path / "b"
    stage = backup._stage

    def meanwhile(*args):
        counts = stage(*args)
        target.mkdir()
        (target / "theirs.db").write_bytes(b"someone else's backup")
        return counts

    monkeypatch.setattr(backup, "_stage", meanwhile)
    db = app.extensions["gridcollect"].db()
    with pytest.raises(backup.BackupError, match="not put there"):
        backup.backup(db, app.config["DATABASE"], target, "admin")
    assert [p.name for p in target.iterdir()] == ["theirs.db"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # and no staging left


def test_a_killed_backup_leaves_nothing_and_can_be_run_again(app, login, tmp_path):
    with_photo(login)
    send_and_confirm(login, "b1", person(1))
    assert login("analyst").post("/api/v1/releases", json={"note": "q"}).status_code == 201
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    db_path, target = app.config["DATABASE"], tmp_path / "b"
    code = "\n".join([
        "import os, signal",
        "from gridcollect import backup",
        "from gridcollect.cli import main",
        "copy = backup._copy",
        "def copy_then_die(source, target):",
        "    copy(source, target)",
        "    os.kill(os.getpid(), signal.SIGKILL)  # power cut, OOM killer",
        "backup._copy = copy_then_die",
        f"main(['backup', {str(target)!r}, '--db', {db_path!r}])"])
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert killed.returncode == -9, killed.stderr
    assert not target.exists()
    again = CliRunner().invoke(main, ["backup", str(target), "--db", db_path])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # the dead staging is gone


@pytest.mark.slow
def test_an_online_backup_holds_every_batch_accepted_before_it(tmp_path, figures):
    """Phones keep sending batches and photos through two server processes, and an
    analyst keeps building releases, while backups are taken; each backup holds every
    batch answered before it began, no batch in part, the file of every photo and
    release it names, and no release half built."""
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
            results = response.json()["results"]
            assert {r["status"] for r in results} == {"accepted"}
            answered.append((time.monotonic(), ids))
            photo = JPEG + uuid.uuid4().bytes  # a photo of its own for one of them
            assert sender.post(f"/submissions/{results[0]['id']}/photos", data=photo,
                               headers={"Content-Type": "image/jpeg"}).status_code == 201

    def releases(server):
        analyst = Phone(server.url, "analyst")
        while not stop.is_set():
            assert analyst.post("/releases", json={"note": "n"}).status_code == 201

    try:
        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            phones = [pool.submit(phone, servers[i % 2]) for i in range(4)]
            phones.append(pool.submit(releases, servers[1]))
            backups = []
            for n in range(3):
                time.sleep(1.0)
                began = time.monotonic()
                cli("backup", str(tmp_path / f"backup{n}"), db=db)
                backups.append((began, tmp_path / f"backup{n}" / "city.db"))
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
        photos = rows(path, "SELECT sha256 FROM photos")
        assert photos
        for (digest,) in photos:
            stored_photo = path.parent / "city.db-photos" / digest[:2] / digest
            assert hashlib.sha256(stored_photo.read_bytes()).hexdigest() == digest
        ready = rows(path, "SELECT file, sha256 FROM releases WHERE state = 'ready'")
        assert ready and not rows(path, "SELECT 1 FROM releases WHERE state = 'building'")
        for file, digest in ready:
            assert file.startswith(str(path.parent / "city.db-releases"))
            assert hashlib.sha256(pathlib.Path(file).read_bytes()).hexdigest() == digest
        figures("photos and release files in backups, checked", len(photos) + len(ready))
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
