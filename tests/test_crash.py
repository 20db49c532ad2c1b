"""Crashes lose nothing: the server (gunicorn master and workers) is killed with SIGKILL
at random moments while phones send batches, while supervisors confirm (merge), and
while releases are built; after each kill the database is checked and the server
restarted on it. Set GRIDCOLLECT_CRASH_SEED to replay a run."""
import concurrent.futures
import hashlib
import itertools
import os
import random
import sqlite3
import threading
import time
import uuid

import pytest
import requests
from live import Phone, Server, log_problems, make_city

from conftest import GRID_CODE, GRID_FAR, GRID_OTHER, derived_tables, id_number, item, person
from gridcollect import store, workflow

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("GRIDCOLLECT_CRASH_SEED", time.time_ns() % 2 ** 32))
PHONES = {"w3": GRID_CODE, "w4": GRID_OTHER, "wfar": GRID_FAR}  # worker: grid
BATCH_KILLS, MERGE_KILLS, RELEASE_KILLS = 20, 6, 5


def integrity(db_path) -> list:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()


def stored(db_path) -> dict:
    """client id -> (submission id, how many rows have it)."""
    conn = sqlite3.connect(db_path)
    try:
        return {client_id: (sid, count) for client_id, sid, count in conn.execute(
            "SELECT client_id, min(id), count(*) FROM submissions GROUP BY worker, client_id")}
    finally:
        conn.close()


def new_batch(rng, worker, size=20) -> dict:
    """A batch of persons, about one in ten invalid (a wrong ID check digit)."""
    items = []
    for _ in range(size):
        data = person(rng.randrange(1000))
        if rng.random() < 0.1:
            data["id_number"] = data["id_number"][:17] + ("0" if data["id_number"][17] != "0"
                                                          else "1")
        items.append(item(f"{worker}-{uuid.UUID(int=rng.getrandbits(128))}", data,
                          grid_code=PHONES[worker]))
    return {"submissions": items}


class Phones:
    """Phones sending batches until told to stop; a batch the server never answered is
    sent again, unchanged, by the same phone (as the app does after a reconnect)."""

    def __init__(self, rng):
        self.rng, self.lock = rng, threading.Lock()
        self.tokens = {}
        self.retry = {worker: [] for worker in PHONES}
        self.answers = []  # (worker, batch, results) of every answered batch
        self.retried = 0

    def login(self, url):
        self.tokens = {worker: Phone(url, worker).token for worker in PHONES}

    def send(self, url, worker, stop):
        phone = Phone(url, token=self.tokens[worker])
        while not stop.is_set():
            with self.lock:
                retrying = bool(self.retry[worker])
                batch = self.retry[worker].pop() if retrying else new_batch(self.rng, worker)
            try:
                response = phone.post("/submissions", json=batch, timeout=20)
            except requests.RequestException:
                with self.lock:
                    self.retry[worker].append(batch)
                return
            assert response.status_code == 200, response.text
            with self.lock:
                self.retried += retrying
                self.answers.append((worker, batch, response.json()["results"]))


def check_answers(db_path, answers):
    """Every item answered accepted or duplicate is stored, once, under the id it was
    answered with; a batch is stored whole or not at all; invalid items are not."""
    rows = stored(db_path)
    for _, batch, results in answers:
        statuses = set()
        for sent, result in zip(batch["submissions"], results):
            assert result["client_id"] == sent["client_id"]
            statuses.add(result["status"])
            if result["status"] in ("accepted", "duplicate"):
                assert rows[sent["client_id"]] == (result["id"], 1)
            else:
                assert result["status"] == "invalid" and sent["client_id"] not in rows
        # a batch is answered as a whole: all new, or (a retry of a stored batch) all seen
        assert not {"accepted", "duplicate"} <= statuses, results
    assert all(count == 1 for _, count in rows.values())


def test_kills_while_phones_send_batches(tmp_path, figures):
    rng = random.Random(SEED)
    db = make_city(tmp_path)
    phones = Phones(rng)
    cut = 0
    for kill in range(BATCH_KILLS):
        server = Server(db, tmp_path / f"batches{kill}.log")
        if kill == 0:
            phones.login(server.url)
        stop = threading.Event()
        with concurrent.futures.ThreadPoolExecutor(len(PHONES)) as pool:
            sending = [pool.submit(phones.send, server.url, w, stop) for w in PHONES]
            time.sleep(rng.uniform(0.3, 1.2))
            server.kill()
            stop.set()
            for future in sending:
                future.result()
        cut += sum(len(batches) for batches in phones.retry.values())
        assert integrity(db) == [("ok",)], f"seed {SEED}, kill {kill}"
        check_answers(db, phones.answers)
        figures("SIGKILLs survived", 1)
    # the phones come back and send what was never answered
    server = Server(db, tmp_path / "batches-final.log")
    try:
        for worker in PHONES:
            phone = Phone(server.url, token=phones.tokens[worker])
            while phones.retry[worker]:
                batch = phones.retry[worker].pop()
                response = phone.post("/submissions", json=batch)
                assert response.status_code == 200
                phones.retried += 1
                phones.answers.append((worker, batch, response.json()["results"]))
    finally:
        server.stop()
    check_answers(db, phones.answers)
    assert log_problems(*tmp_path.glob("batches*.log")) == []
    rows = stored(db)
    accepted = sum(r["status"] == "accepted" for *_, results in phones.answers for r in results)
    figures("submissions answered accepted", accepted)
    figures("submissions answered accepted and found after the kills",
            sum(1 for *_, results in phones.answers for r in results
                if r["status"] == "accepted" and r["client_id"] in rows))
    figures("batches cut by a kill and sent again", phones.retried)
    figures("duplicates stored", sum(count - 1 for _, count in rows.values()))
    assert cut > 0, "no kill caught a batch in flight"


def rebuilt_equals_live(db_path, folder):
    """The master records, their history and the monitoring figures are exactly what
    the merged submissions give (rebuilt on a copy): no merge was half applied."""
    copy = folder / f"copy-{uuid.uuid4().hex}.db"
    source = sqlite3.connect(db_path)
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.close()
    db = store.connect(copy)
    try:
        live = derived_tables(db)
        workflow.rebuild(db)
        assert derived_tables(db) == live
    finally:
        db.close()
        copy.unlink()


def test_kills_while_supervisors_confirm(tmp_path, figures):
    rng = random.Random(SEED + 1)
    db = make_city(tmp_path)
    server = Server(db, tmp_path / "merge-setup.log")
    try:
        phone = Phone(server.url, "w3")
        for n in range(100):  # 2,000 submissions, many on the same person: versions pile up
            batch = {"submissions": [item(f"m{n}-{i}", person(rng.randrange(300)))
                                     for i in range(20)]}
            assert phone.post("/submissions", json=batch).status_code == 200
        tokens = {user: Phone(server.url, user).token for user in ("w3", "sup")}
    finally:
        server.stop()
    confirmed = {}  # submission id -> state answered
    lock = threading.Lock()

    def supervise(url, stop):
        sup = Phone(url, token=tokens["sup"])
        while not stop.is_set():
            try:
                pending = sup.get("/submissions?state=pending&limit=200").json()["items"]
                ids = [s["id"] for s in pending]
                if not ids:
                    time.sleep(0.05)
                    continue
                rng.shuffle(ids)
                response = sup.post("/reviews", json={"ids": ids[:20], "action": "confirm"})
            except requests.RequestException:
                return
            assert response.status_code == 200, response.text
            with lock:
                for result in response.json()["results"]:
                    if result["status"] == "reviewed":
                        confirmed[result["id"]] = result["state"]

    def collect(url, stop, kill):  # the phone goes on sending: merges race new batches
        sender = Phone(url, token=tokens["w3"])
        for n in itertools.count():
            if stop.is_set():
                return
            batch = {"submissions": [item(f"k{kill}-{n}-{i}", person(rng.randrange(300)))
                                     for i in range(20)]}
            try:
                sender.post("/submissions", json=batch)
            except requests.RequestException:
                return

    for kill in range(MERGE_KILLS):
        server = Server(db, tmp_path / f"merge{kill}.log")
        stop = threading.Event()
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            working = [pool.submit(supervise, server.url, stop) for _ in range(2)]
            working.append(pool.submit(collect, server.url, stop, kill))
            time.sleep(rng.uniform(0.3, 1.5))
            server.kill()
            stop.set()
            for future in working:
                future.result()
        assert integrity(db) == [("ok",)], f"seed {SEED}, kill {kill}"
        conn = sqlite3.connect(db)
        states = dict(conn.execute("SELECT id, state FROM submissions"))
        conn.close()
        assert all(states[sid] == state for sid, state in confirmed.items())
        rebuilt_equals_live(db, tmp_path)
        figures("SIGKILLs survived", 1)
    assert confirmed, "no confirmation was answered"
    figures("merges answered and found after the kills", len(confirmed))
    assert log_problems(*tmp_path.glob("merge*.log")) == []


def test_kills_while_releases_are_built(tmp_path, figures):
    rng = random.Random(SEED + 2)
    db = make_city(tmp_path)
    server = Server(db, tmp_path / "release-setup.log")
    try:
        phone, sup = Phone(server.url, "w3"), Phone(server.url, "sup")
        for year in range(1940, 1980):  # 4,000 persons: a release takes long enough to cut
            batch = {"submissions": [item(f"r{year}-{i}", person(
                i, id_number=id_number(i, birth=f"{year}0101"), birth_date=f"{year}-01-01"))
                for i in range(100)]}
            results = phone.post("/submissions", json=batch).json()["results"]
            ids = [r["id"] for r in results if r["status"] == "accepted"]
            assert len(ids) == 100, results
            assert sup.post("/reviews", json={"ids": ids, "action": "confirm"}).status_code == 200
        token = Phone(server.url, "analyst").token
    finally:
        server.stop()
    answered = set()
    folder = tmp_path / "city.db-releases"
    for kill in range(RELEASE_KILLS):
        server = Server(db, tmp_path / f"release{kill}.log")
        analyst = Phone(server.url, token=token)
        stop = threading.Event()

        def build(analyst, stop, note):
            while not stop.is_set():
                try:
                    response = analyst.post("/releases", json={"note": note})
                except requests.RequestException:
                    return
                assert response.status_code == 201, response.text
                answered.add(response.json()["id"])

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            building = pool.submit(build, analyst, stop, f"kill {kill}")
            time.sleep(rng.uniform(0.2, 1.5))
            server.kill()
            stop.set()
            building.result()
        assert integrity(db) == [("ok",)], f"seed {SEED}, kill {kill}"
        figures("SIGKILLs survived", 1)
    server = Server(db, tmp_path / "release-final.log")  # fails the builds that died
    try:
        admin = Phone(server.url, "admin")
        for release_id in answered:
            assert admin.get(f"/releases/{release_id}").json()["id"] == release_id
    finally:
        server.stop()
    conn = sqlite3.connect(db)
    states = dict(conn.execute("SELECT state, count(*) FROM releases GROUP BY state"))
    ready = dict(conn.execute("SELECT file, sha256 FROM releases WHERE state = 'ready'"))
    conn.close()
    assert answered and "building" not in states
    assert states.get("failed", 0) > 0, "no kill caught a release being built"
    assert {str(p) for p in folder.iterdir()} == set(ready)  # no partial file left behind
    for file, sha256 in ready.items():
        with open(file, "rb") as handle:
            assert hashlib.file_digest(handle, "sha256").hexdigest() == sha256
    figures("releases answered and found after the kills", len(answered))
    figures("releases cut by a kill (failed, file deleted)", states.get("failed", 0))
    assert log_problems(*tmp_path.glob("release*.log")) == []
