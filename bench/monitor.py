"""Monitor latency on a city: our kept-up counters against the naive dashboard query.

    python bench/make_city.py /tmp/city.db      # once: 1M persons, ~11,000 grids
    python bench/monitor.py /tmp/city.db [--requests 50]

Starts ``server.py --db CITY.db --workers 2`` on a free port, logs in as the
supervisor of the district with the most submissions (``sup-<district>``, scope that
district) and times one request at a time (each on a new connection, as the
server closes them):

  grids          GET /api/v1/monitor/grids?under=<district>                (100 grids)
  grids 1000     GET /api/v1/monitor/grids?under=<district>&limit=1000
  district       GET /api/v1/monitor/grids?under=<district>&level=district
  streets        GET /api/v1/monitor/grids?level=street                   (its scope)
  field errors   GET /api/v1/monitor/fields?under=<district>

The baseline, in this process on the same file, is what a dashboard without our
counters would run for the district: raw sqlite3 ``SELECT grid_code, state, count(*)
FROM submissions WHERE grid_code >= ? AND grid_code < ? GROUP BY 1, 2`` plus the
median review time per grid computed in Python from the reviewed rows. Each round
times every request and the baseline once; 3 untimed warm-up rounds, then
``--requests`` rounds. Prints p50/p95 of each and baseline/ours (p50 and p95).
Target: every district request p95 < 200 ms.

The answers are checked against the raw tables: all the district's grids (paged
1000 at a time) have the baseline's counts per state and its median review times
(to the 3 significant figures the counters keep); the district row has the raw
counts (submissions by state, invalid attempts, oldest pending, active records);
the streets add up to the district; the field-error counts equal a json_each
count of invalid_attempts.
"""
from __future__ import annotations

import argparse
import datetime
import pathlib
import sqlite3
import statistics
import sys
import tempfile
import time

import requests

BENCH = pathlib.Path(__file__).resolve().parent
PASSWORD = "bench-Passw0rd-2024"
WORKERS = 2
WARMUP = 3
TARGET_MS = 200
STATES = ("pending", "confirmed", "rejected", "returned", "conflict")


import ingest  # noqa: E402 - bench/ is sys.path[0]: server start/stop, percentile


def naive(con: sqlite3.Connection, district: str) -> tuple:
    """The dashboard without counters: (grid -> state -> count, grid -> median seconds)."""
    bounds = [district, district + ":"]
    counts = {}
    for grid, state, n in con.execute(
            "SELECT grid_code, state, count(*) FROM submissions"
            " WHERE grid_code >= ? AND grid_code < ? GROUP BY 1, 2", bounds):
        counts.setdefault(grid, {})[state] = n
    seconds, parse = {}, datetime.datetime.fromisoformat
    for grid, received, reviewed in con.execute(
            "SELECT grid_code, received_at, review_at FROM submissions WHERE grid_code >= ?"
            " AND grid_code < ? AND state IN ('confirmed', 'rejected', 'returned')", bounds):
        seconds.setdefault(grid, []).append((parse(reviewed) - parse(received)).total_seconds())
    return counts, {grid: statistics.median(values) for grid, values in seconds.items()}


def get(session, base, path, headers) -> dict:
    r = session.get(base + path, headers=headers, timeout=60)
    if r.status_code != 200:
        raise RuntimeError(f"GET {path}: {r.status_code} {r.text[:300]}")
    return r.json()


def check(con, session, base, headers, district, counts, medians) -> list:
    """Our answers against the raw tables; the list of what was checked."""
    bounds = [district, district + ":"]
    grids, cursor = {}, None
    while True:
        page = get(session, base, f"/api/v1/monitor/grids?under={district}&limit=1000"
                   + (f"&cursor={cursor}" if cursor else ""), headers)
        grids.update((row["code"], row) for row in page["items"])
        cursor = page["next"]
        if not cursor:
            break
    n_grids = con.execute("SELECT count(*) FROM grids WHERE code >= ? AND code < ?",
                          bounds).fetchone()[0]
    assert len(grids) == n_grids, (len(grids), n_grids)
    for code, row in grids.items():
        raw = counts.get(code, {})
        assert row["submitted"] == sum(raw.values()), (code, row, raw)
        assert all(row[s] == raw.get(s, 0) for s in STATES), (code, row, raw)
        ours, theirs = row["median_review_seconds"], medians.get(code)
        assert (ours is None) == (theirs is None) and (  # ours: to 3 significant figures
            ours is None or abs(ours - theirs) <= 0.005 * theirs + 0.001), (code, ours, theirs)
    [row] = get(session, base, f"/api/v1/monitor/grids?under={district}&level=district",
                headers)["items"]
    raw = dict(con.execute("SELECT state, count(*) FROM submissions WHERE grid_code >= ?"
                           " AND grid_code < ? GROUP BY 1", bounds).fetchall())
    assert row["submitted"] == sum(raw.values()) == sum(g["submitted"] for g in grids.values())
    assert all(row[s] == raw.get(s, 0) for s in STATES), (row, raw)
    invalid, = con.execute("SELECT count(*) FROM invalid_attempts WHERE grid_code >= ? AND"
                           " grid_code < ?", bounds).fetchone()
    oldest, = con.execute("SELECT min(received_at) FROM submissions WHERE state = 'pending'"
                          " AND grid_code >= ? AND grid_code < ?", bounds).fetchone()
    active = dict(con.execute("SELECT record_type, count(*) FROM records WHERE NOT retired"
                              " AND grid_code >= ? AND grid_code < ? GROUP BY 1", bounds))
    assert (row["invalid_attempts"], row["oldest_pending"], row["records"]) == (
        invalid, oldest, active), (row, invalid, oldest, active)
    streets = get(session, base, "/api/v1/monitor/grids?level=street&limit=1000",
                  headers)["items"]
    assert sum(s["submitted"] for s in streets) == row["submitted"]
    errors = {(e["record_type"], e["field"], e["code"]): e["count"] for e in get(
        session, base, f"/api/v1/monitor/fields?under={district}&limit=500", headers)["items"]}
    raw_errors = {(t, f, c): n for t, f, c, n in con.execute(
        "SELECT record_type, json_extract(e.value, '$.field'), json_extract(e.value, '$.code'),"
        " count(*) FROM invalid_attempts, json_each(invalid_attempts.errors) e"
        " WHERE grid_code >= ? AND grid_code < ? GROUP BY 1, 2, 3", bounds)}
    assert errors == raw_errors, (errors, raw_errors)
    return [f"{len(grids):,} grids' counts per state and median review times",
            f"district: {row['submitted']:,} submissions by state, {invalid:,} invalid attempts,"
            f" oldest pending, {sum(active.values()):,} active records",
            f"{len(streets)} streets add up", f"{len(errors)} field-error counts"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=pathlib.Path)
    parser.add_argument("--requests", type=int, default=50, help="timed rounds")
    args = parser.parse_args(argv)
    if not args.db.exists():
        parser.error(f"{args.db}: no such file (build one with bench/make_city.py)")
    con = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    total, = con.execute("SELECT count(*) FROM submissions").fetchone()
    district, in_district = con.execute(
        "SELECT substr(grid_code, 1, 6), count(*) FROM submissions GROUP BY 1"
        " ORDER BY 2 DESC LIMIT 1").fetchone()
    n_grids, = con.execute("SELECT count(*) FROM grids WHERE code >= ? AND code < ?",
                           [district, district + ":"]).fetchone()
    endpoints = {
        "grids (100)": f"/api/v1/monitor/grids?under={district}",
        "grids (limit=1000)": f"/api/v1/monitor/grids?under={district}&limit=1000",
        "district (level=district)": f"/api/v1/monitor/grids?under={district}&level=district",
        "streets (level=street)": "/api/v1/monitor/grids?level=street",
        "field errors": f"/api/v1/monitor/fields?under={district}",
    }
    times = {name: [] for name in ["baseline", *endpoints]}
    with tempfile.TemporaryDirectory(prefix="gridcollect-monitor-") as tmp:
        port = ingest.free_port()
        log = pathlib.Path(tmp) / "server.log"
        proc = ingest.start([sys.executable, "server.py", "--host", "127.0.0.1", "--port",
                             str(port), "--db", str(args.db), "--workers", str(WORKERS)], log)
        base = f"http://127.0.0.1:{port}"
        try:
            ingest.wait_ready(base + "/api/v1/openapi.json", proc, log, timeout=120)
            session = requests.Session()
            r = session.post(base + "/api/v1/auth/token", timeout=30,
                             json={"username": f"sup-{district}", "password": PASSWORD})
            if r.status_code != 200:
                raise RuntimeError(f"login as sup-{district}: {r.status_code} {r.text[:300]}")
            headers = {"Authorization": "Bearer " + r.json()["token"]}
            for _ in range(WARMUP + args.requests):
                for name, path in endpoints.items():
                    start = time.perf_counter()
                    get(session, base, path, headers)
                    times[name].append(time.perf_counter() - start)
                start = time.perf_counter()
                counts, medians = naive(con, district)
                times["baseline"].append(time.perf_counter() - start)
            checked = check(con, session, base, headers, district, counts, medians)
        except Exception as exc:  # noqa: BLE001 - re-raised with the server log
            raise RuntimeError(f"{exc}\n--- server log tail ---\n{ingest.tail(log)}") from None
        finally:
            ingest.stop(proc)

    def p(name, fraction):
        return ingest.percentile(times[name][WARMUP:], fraction) * 1000

    print(f"monitor on {args.db} ({total:,} submissions, {args.db.stat().st_size / 2 ** 30:.1f} "
          f"GB): district {district} ({in_district:,} submissions, {n_grids:,} grids) as "
          f"sup-{district}; {args.requests} rounds, server.py --workers {WORKERS}")
    print(f"  {'baseline: naive GROUP BY + Python medians':<44} p50 {p('baseline', .5):8.1f} ms"
          f"  p95 {p('baseline', .95):8.1f} ms   (all {n_grids:,} grids, in-process)")
    over = []
    for name in endpoints:
        p50, p95 = p(name, .5), p(name, .95)
        if p95 >= TARGET_MS:
            over.append(name)
        print(f"  {name:<44} p50 {p50:8.1f} ms  p95 {p95:8.1f} ms   baseline/ours "
              f"{p('baseline', .5) / p50:6.1f}x p50, {p('baseline', .95) / p95:6.1f}x p95")
    print(f"target: every district request p95 < {TARGET_MS} ms "
          f"({'NOT met by ' + ', '.join(over) if over else 'met'})")
    print("checked against the raw tables: " + "; ".join(checked))


if __name__ == "__main__":
    main()
