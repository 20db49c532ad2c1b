"""Concurrency over real HTTP: three server processes (two workers each) on one SQLite
file. Phones re-sending one batch at the same moment store it once; supervisors
confirming one submission at the same moment make one merge and one 409; under a
mixed load of every kind of writer, no client ever sees "database is locked"."""
import concurrent.futures
import functools
import itertools
import sqlite3
import threading
import time

import pytest
from live import Phone, Server, cli, log_problems, make_city

from conftest import GRID_CODE, GRID_OTHER, id_number, item, person

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    folder = tmp_path_factory.mktemp("concurrency")
    db = make_city(folder)
    servers = [Server(db, folder / f"server{n}.log") for n in range(3)]
    yield servers, db, folder
    for server in servers:
        server.stop()
    assert log_problems(*(server.log_path for server in servers)) == []


def query(db, sql, params=()):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def at_once(calls):
    """Run the calls in threads released together; their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_eight_phones_resending_one_batch_store_it_once(city, figures):
    servers, db, _ = city
    phones = [Phone(servers[n % 3].url, "w4") for n in range(8)]
    for round_ in range(10):
        batch = {"submissions": [item(f"same-{round_}-{i}", person(i), grid_code=GRID_OTHER)
                                 for i in range(50)]}
        answers = at_once([functools.partial(p.post, "/submissions", json=batch)
                           for p in phones])
        assert {a.status_code for a in answers} == {200}
        results = [a.json()["results"] for a in answers]
        for i in range(50):
            per_item = [r[i] for r in results]
            assert len({r["id"] for r in per_item}) == 1  # every phone told the same id
            assert sorted(r["status"] for r in per_item) == ["accepted"] + ["duplicate"] * 7
        rows = query(db, "SELECT count(*), count(DISTINCT client_id) FROM submissions"
                         " WHERE client_id LIKE ?", [f"same-{round_}-%"])
        assert rows == [(50, 50)]
        figures("concurrent re-sends of a stored item answered duplicate", 50 * 7)
    figures("duplicates stored", 0)


def test_supervisors_confirming_one_submission_at_once_merge_it_once(city, figures):
    servers, db, _ = city
    w3 = Phone(servers[0].url, "w3")
    supervisors = [Phone(server.url, "sup") for server in servers]
    batch = {"submissions": [item(f"twice-{i}", person(500 + i)) for i in range(30)]}
    ids = [r["id"] for r in w3.post("/submissions", json=batch).json()["results"]]
    for sid in ids:
        answers = at_once([functools.partial(s.post, f"/submissions/{sid}/review",
                                             json={"action": "confirm"})
                           for s in supervisors])
        codes = sorted(a.status_code for a in answers)
        assert codes == [200, 409, 409], [a.text for a in answers]
        assert {a.json()["error"] for a in answers if a.status_code == 409} == {"not_pending"}
        figures("concurrent confirms of one submission", len(supervisors))
    keys = [id_number(500 + i) for i in range(30)]
    marks = ",".join("?" * len(keys))
    assert query(db, f"SELECT count(*), max(version) FROM records WHERE key IN ({marks})",
                 keys) == [(30, 1)]
    assert query(db, f"SELECT count(*) FROM record_history WHERE key IN ({marks})",
                 keys) == [(30,)]


def test_no_client_ever_sees_database_is_locked(city, figures):
    """Phones, bulk confirms, releases, monitor reads and online backups at once."""
    servers, db, folder = city
    stop = threading.Event()
    answers, lock = [], threading.Lock()

    def keep(who, call):
        for n in itertools.count():
            if stop.is_set():
                return
            response = call(n)
            with lock:
                answers.append((who, response.status_code, response.text[:300]))

    def send(phone, worker, grid):
        return lambda n: phone.post("/submissions", json={"submissions": [
            item(f"load-{worker}-{n}-{i}", person(i), grid_code=grid) for i in range(50)]})

    def confirm(sup):
        def call(_):
            pending = sup.get("/submissions?state=pending&limit=100").json()["items"]
            return sup.post("/reviews", json={"ids": [s["id"] for s in pending] or [1],
                                              "action": "confirm"})
        return call

    w3, w4 = Phone(servers[0].url, "w3"), Phone(servers[1].url, "w4")
    sups = [Phone(servers[1].url, "sup"), Phone(servers[2].url, "sup")]
    analyst, admin = Phone(servers[2].url, "analyst"), Phone(servers[0].url, "admin")
    jobs = [("phone", send(w3, "w3", GRID_CODE)), ("phone", send(w4, "w4", GRID_OTHER)),
            ("confirm", confirm(sups[0])), ("confirm", confirm(sups[1])),
            ("release", lambda n: analyst.post("/releases", json={"note": f"load {n}"})),
            ("monitor", lambda n: admin.get("/monitor/grids?level=grid")),
            ("records", lambda n: sups[0].get("/records/person?limit=200"))]
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        running = [pool.submit(keep, who, call) for who, call in jobs]
        for n in range(2):
            time.sleep(2)
            cli("backup", str(folder / f"load-backup{n}.db"), db=db)
        time.sleep(2)
        stop.set()
        for future in running:
            future.result()
    refused = [(who, code, text) for who, code, text in answers
               if code >= 500 or "locked" in text]
    assert refused == []
    assert {code for *_, code, _ in answers} <= {200, 201}
    assert {who for who, *_ in answers} == {who for who, _ in jobs}
    figures("requests under mixed concurrent load", len(answers))
    figures("5xx seen", len(refused))
