"""Bulk confirm throughput: POST /api/v1/reviews (each confirm merges) over HTTP,
against raw sqlite3 UPDATEs of the same rows.

    python bench/merge.py [--submissions 100000] [--repeats 3] [--clients 2]

Setup, untimed, once: a fresh database in a temporary folder with bench/make_city.py's
grids (200, over the five districts), users and generators, and ``--submissions``
pending submissions inserted directly (``store.insert_submissions``): 70% persons,
30% houses (a sample of 1,000 validated against their standards); 10% of them are a
second submission of a record already among them (a new phone, a new use), so
records reach version 2.
A supervisor ``sup-city`` (scope: the five districts) reviews.

Each run copies that database and starts ``server.py --workers 2`` on it; ``--clients``
processes (default 2; 1 = sequential), each logged in on its own, confirm the
submissions in id order, 500 ids per ``POST /api/v1/reviews`` (client i sends
batches i, i + clients, ...). Timed from the first request to the last answer.

Baseline, in this process on another copy: raw sqlite3 ``UPDATE submissions SET
state = 'confirmed', review_by = ?, review_at = ? WHERE id IN (500 ids)``, one
``BEGIN IMMEDIATE`` transaction per batch, in id order: no merge, no records, no
history, no audit (the schema's monitor triggers still fire).

Prints merges/s (median of ``--repeats`` runs, alternating), request p50/p95, and
ours/baseline. Target: >= 5,000 merges/s. After every server run: each answer
``reviewed``/``confirmed``; every submission confirmed with its own merge_seq; as
many records as distinct (record_type, key); each record's version = its number of
submissions; one history row per submission; and the records equal a replay of
``merge.apply`` over the submissions in merge_seq order.
"""
from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import pathlib
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid

import requests
import shapely

from gridcollect import access, accounts, clock, merge, store, workflow
from gridcollect.grids import Grid
from gridcollect.standards import load_standards

BENCH = pathlib.Path(__file__).resolve().parent
BATCH = 500
GRIDS = 200
WORKERS = 2


import ingest  # noqa: E402 - bench/ is sys.path[0]: server start/stop, percentile
import make_city as city  # noqa: E402


# ---------------------------------------------------------------- setup

def make_template(path: pathlib.Path, count: int, seed: int = 1):
    """Grids, users and ``count`` pending submissions; checkpointed and closed."""
    rng, standards = random.Random(seed), load_standards()
    db = store.connect(path)
    store.migrate(db, clock.iso(clock.now()))
    grids = city.make_grids(rng, GRIDS)
    city.write_grids(db, grids)
    city.add_users(db, rng, grids)
    accounts.add_user(db, "bench", "sup-city", "supervisor", [d[0] for d in city.DISTRICTS],
                      city.PASSWORD, scrypt_n=city.SCRYPT_N)
    records = city.Records(rng, standards)
    houses = {g["code"]: records.houses(g, count // GRIDS + 50) for g in grids}
    unused = {code: rng.sample(found, len(found)) for code, found in houses.items()}
    firsts = round(count / 1.1)
    items = []  # (sort key, grid, record type, data): a repeat sorts after its first
    for _ in range(firsts):
        grid = rng.choice(grids)
        if rng.random() < 0.7:
            record_type, data = "person", records.person(grid, houses[grid["code"]])
        else:
            record_type, data = "house", unused[grid["code"]].pop()
        items.append([rng.random(), grid, record_type, data])
    for first in rng.sample(items, count - firsts):
        key, grid, record_type, data = first
        change = {"phone": records.phone()} if record_type == "person" else {
            "usage": rng.choice("1234")}
        items.append([rng.uniform(key, 1), grid, record_type, {**data, **change}])
    items.sort(key=lambda item: item[0])
    now = clock.now()
    rows = []
    for n, (_, grid, record_type, data) in enumerate(items):
        standard = standards.effective(record_type, grid["code"])
        at = clock.iso(now - datetime.timedelta(seconds=3600 - n * 3600 / count))
        rows.append({"worker": grid["workers"][0],
                     "client_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                     "record_type": record_type, "grid_code": grid["code"], "action": "upsert",
                     "natural_key": data[standard.natural_key], "data": data,
                     "state": "pending", "collected_at": at, "received_at": at,
                     "standard_version": standard.version, "base_version": None,
                     "replaces": None})
    by_code = {g["code"]: g for g in grids}
    for row in rng.sample(rows, min(1000, count)):  # a sample, as the server would check it
        grid = Grid(row["grid_code"], "", shapely.from_geojson(city.geometry(
            by_code[row["grid_code"]])))
        result = standards.effective(row["record_type"], row["grid_code"]).validate(
            row["data"], grid)
        assert result.valid and result.document == row["data"], result.as_dict()
    for start in range(0, len(rows), 10_000):
        with store.write(db):
            store.insert_submissions(db, rows[start:start + 10_000])
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


# ---------------------------------------------------------------- runs

def client(base: str, index: int, batches: list, barrier, queue):
    """Log in, wait for the others, confirm each batch, report latencies and results."""
    out = {"index": index, "error": None, "latencies": [], "results": []}
    try:
        session = requests.Session()
        r = session.post(base + "/api/v1/auth/token", timeout=30,
                         json={"username": "sup-city", "password": city.PASSWORD})
        if r.status_code != 200:
            raise RuntimeError(f"login: {r.status_code} {r.text[:300]}")
        headers = {"Authorization": "Bearer " + r.json()["token"],
                   "Content-Type": "application/json"}
        bodies = [json.dumps({"ids": ids, "action": "confirm"}) for ids in batches]
        barrier.wait(timeout=300)
        out["start"] = time.monotonic()
        for body in bodies:
            t0 = time.monotonic()
            r = session.post(base + "/api/v1/reviews", data=body, headers=headers, timeout=300)
            out["latencies"].append(time.monotonic() - t0)
            if r.status_code != 200:
                raise RuntimeError(f"POST /api/v1/reviews: {r.status_code} {r.text[:300]}")
            out["results"] += r.json()["results"]
        out["end"] = time.monotonic()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        out["error"] = f"client {index}: {type(exc).__name__}: {exc}"
        try:
            barrier.abort()
        except Exception:  # noqa: BLE001, S110 - the barrier may already be broken
            pass
    queue.put(out)


def run_server(tmp: pathlib.Path, template: pathlib.Path, run: int, clients: int) -> dict:
    path = tmp / f"server-{run}.db"
    shutil.copyfile(template, path)  # checkpointed and closed: the whole database
    ids = [row[0] for row in sqlite3.connect(path).execute("SELECT id FROM submissions"
                                                            " ORDER BY id")]
    batches = [ids[i:i + BATCH] for i in range(0, len(ids), BATCH)]
    port, log = ingest.free_port(), tmp / f"server-{run}.log"
    proc = ingest.start([sys.executable, "server.py", "--host", "127.0.0.1", "--port",
                         str(port), "--db", str(path), "--workers", str(WORKERS)], log)
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(clients), ctx.Queue()
    base = f"http://127.0.0.1:{port}"
    try:
        ingest.wait_ready(base + "/api/v1/openapi.json", proc, log)
        procs = [ctx.Process(target=client, args=(base, i, batches[i::clients], barrier, queue))
                 for i in range(clients)]
        for p in procs:
            p.start()
        outs = [queue.get(timeout=1800) for _ in procs]
        for p in procs:
            p.join(timeout=10)
        errors = [o["error"] for o in outs if o["error"]]
        if errors:
            raise RuntimeError("; ".join(errors))
    except Exception as exc:  # noqa: BLE001 - re-raised with the server log
        raise RuntimeError(f"{exc}\n--- server log tail ---\n{ingest.tail(log)}") from None
    finally:
        ingest.stop(proc)
    results = [r for o in outs for r in o["results"]]
    odd = [r for r in results if (r["status"], r["state"]) != ("reviewed", "confirmed")]
    assert len(results) == len(ids) and not odd, (len(results), odd[:3])
    window = max(o["end"] for o in outs) - min(o["start"] for o in outs)
    latencies = [x for o in outs for x in o["latencies"]]
    return {"rate": len(ids) / window, "p50": ingest.percentile(latencies, 0.5),
            "p95": ingest.percentile(latencies, 0.95), "checked": verify(path, len(ids))}


def run_baseline(tmp: pathlib.Path, template: pathlib.Path, run: int) -> dict:
    path = tmp / f"baseline-{run}.db"
    shutil.copyfile(template, path)  # checkpointed and closed: the whole database
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    ids = [row[0] for row in con.execute("SELECT id FROM submissions ORDER BY id")]
    start = time.monotonic()
    for i in range(0, len(ids), BATCH):
        batch = ids[i:i + BATCH]
        con.execute("BEGIN IMMEDIATE")
        con.execute(f"UPDATE submissions SET state = 'confirmed', review_by = ?, review_at = ?"
                    f" WHERE id IN ({','.join('?' * len(batch))})",
                    ["sup-city", clock.iso(clock.now()), *batch])
        con.execute("COMMIT")
    elapsed = time.monotonic() - start
    confirmed, = con.execute("SELECT count(*) FROM submissions WHERE state = 'confirmed'"
                             ).fetchone()
    assert confirmed == len(ids), (confirmed, len(ids))
    con.close()
    return {"rate": len(ids) / elapsed}


def run_in_process(tmp: pathlib.Path, template: pathlib.Path, run: int) -> dict:
    """The same bulk confirm without HTTP: ``workflow.review_many`` in this process, 500
    ids a transaction (what ``gridcollect import --confirm-by`` does)."""
    path = tmp / f"inprocess-{run}.db"
    shutil.copyfile(template, path)
    db = store.connect(path)
    supervisor = access.User.from_row(store.get_user(db, "sup-city"))
    ids = [row[0] for row in db.execute("SELECT id FROM submissions ORDER BY id")]
    start = time.monotonic()
    for i in range(0, len(ids), BATCH):
        results = workflow.review_many(db, supervisor, ids[i:i + BATCH], "confirm", None)
        assert all(r["state"] == "confirmed" for r in results)
    elapsed = time.monotonic() - start
    db.close()
    return {"rate": len(ids) / elapsed}


def verify(path: pathlib.Path, count: int) -> str:
    """The database after the run: see the module docstring."""
    db = store.connect(path)
    con = db.conn
    confirmed, seqs = con.execute("SELECT count(*), count(DISTINCT merge_seq) FROM submissions"
                                  " WHERE state = 'confirmed'").fetchone()
    assert confirmed == seqs == count, (confirmed, seqs, count)
    keys, = con.execute("SELECT count(*) FROM (SELECT DISTINCT record_type, natural_key"
                        " FROM submissions)").fetchone()
    records, = con.execute("SELECT count(*) FROM records").fetchone()
    assert records == keys, (records, keys)
    wrong, = con.execute("""
        SELECT count(*) FROM records r JOIN (SELECT record_type, natural_key, count(*) AS n
          FROM submissions GROUP BY 1, 2) s ON s.record_type = r.record_type
          AND s.natural_key = r.key WHERE r.version != s.n""").fetchone()
    assert wrong == 0, f"{wrong} records with a version other than their submissions"
    history, = con.execute("SELECT count(*) FROM record_history").fetchone()
    assert history == count, (history, count)
    replay = {}
    for sub in store.merged_in_order(db):
        key = sub["record_type"], merge.record_key(sub)
        outcome = merge.apply(replay.get(key), sub, sub["merge_seq"], sub["review_by"],
                              sub["review_at"], force=True)
        replay[key] = outcome.record
    stored = {(r["record_type"], r["key"]): {**r, "data": json.loads(r["data"]),
                                             "retired": bool(r["retired"])}
              for r in db.query("SELECT * FROM records")}
    assert stored == replay, "records differ from a replay of merge.apply"
    top = max(r["version"] for r in replay.values())
    db.close()
    return (f"{count:,} confirmed, {records:,} records = distinct keys, versions = "
            f"submissions per key (up to {top}), {history:,} history rows, "
            f"records = merge.apply replay")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args(argv)
    ours, baseline, direct = [], [], []
    with tempfile.TemporaryDirectory(prefix="gridcollect-merge-") as tmp:
        tmp = pathlib.Path(tmp)
        template = tmp / "template.db"
        started = time.monotonic()
        make_template(template, args.submissions)
        setup = time.monotonic() - started
        for run in range(args.repeats):
            baseline.append(run_baseline(tmp, template, run))
            ours.append(run_server(tmp, template, run, args.clients))
            direct.append(run_in_process(tmp, template, run))
            for name in (f"baseline-{run}.db", f"server-{run}.db", f"inprocess-{run}.db"):
                for suffix in ("", "-wal", "-shm", "-writelock"):
                    (tmp / (name + suffix)).unlink(missing_ok=True)
    rate = statistics.median(r["rate"] for r in ours)
    base_rate = statistics.median(r["rate"] for r in baseline)
    print(f"bulk confirm, {args.submissions:,} pending person/house submissions "
          f"(setup {setup:.0f} s), {BATCH} ids per request, median of {args.repeats}")
    print(f"  {'baseline: raw sqlite3 UPDATE ... WHERE id IN (500), no merge':<64}"
          f"{base_rate:>8,.0f} rows/s")
    label = f"gridcollect POST /api/v1/reviews, {args.clients} clients, --workers {WORKERS}"
    print(f"  {label:<64}{rate:>8,.0f} merges/s  (request p50 "
          f"{statistics.median(r['p50'] for r in ours) * 1000:.0f} ms, p95 "
          f"{statistics.median(r['p95'] for r in ours) * 1000:.0f} ms)")
    direct_rate = statistics.median(r["rate"] for r in direct)
    print(f"  {'gridcollect workflow.review_many in process (import --confirm-by)':<64}"
          f"{direct_rate:>8,.0f} merges/s")
    print(f"ours / baseline: HTTP {rate / base_rate:.2f}x, in process "
          f"{direct_rate / base_rate:.2f}x   target: >= 5,000 merges/s "
          f"(HTTP {'met' if rate >= 5000 else 'NOT met'}, in process "
          f"{'met' if direct_rate >= 5000 else 'NOT met'})")
    print("runs: " + ", ".join(f"{r['rate']:,.0f}" for r in ours) + " merges/s; baseline "
          + ", ".join(f"{r['rate']:,.0f}" for r in baseline) + " rows/s")
    print(f"checked after every run: {ours[-1]['checked']}")


if __name__ == "__main__":
    main()
