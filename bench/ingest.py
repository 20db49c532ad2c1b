"""End-to-end ingest throughput: gridcollect's server against a hand-written Flask baseline.

    python bench/ingest.py [--batches N] [--repeats N] [--baseline-only]

Two client processes, each with its own login and keep-alive ``requests``
session, send batches of 500 person records (bench/validate.py's ``person``,
~5% invalid) back to back to:

  1. the baseline: bench/ingest_baseline.py (Flask, one reused Cerberus validator
     per worker, sqlite-utils ``insert_all``, WAL) on gunicorn with 2 sync workers;
  2. gridcollect: ``server.py --workers 2`` (database prepared with the CLI:
     init-db, grids import, two worker accounts), ``POST /api/v1/submissions``.

Request bodies are generated before timing. After an untimed warm-up (2 batches
per client) each client sends ``--batches`` timed batches (default 20). Prints
records/s over the timed window (first send to last response, across both
clients) and the per-batch latency p50/p95, each the median of ``--repeats``
runs (default 3) alternating baseline and gridcollect, a fresh database per run.
Also the largest peak RSS (VmHWM) of any server process, median over runs.
Every run is checked: all statuses are accepted or invalid, and the number of
accepted results equals the rows stored in the database.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import multiprocessing
import os
import pathlib
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import requests

BENCH = pathlib.Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = sys.executable
GRIDCOLLECT = str(pathlib.Path(PY).with_name("gridcollect"))
GRID = "420502001002003"
BATCH = 500
CLIENTS = 2
WORKERS = 2
WARMUP = 2
PASSWORD = "bench-Passw0rd-2024"


def _load(name: str, path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


person = _load("bench_validate", BENCH / "validate.py").person


# ---------------------------------------------------------------- helpers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list, log: pathlib.Path, env=None) -> subprocess.Popen:
    with open(log, "wb") as handle:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
    # workers left behind in the group (e.g. the master died first)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def peak_rss_mb(group: int) -> float:
    """The largest peak resident memory (VmHWM) of the processes in a process group."""
    peak = 0
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != group:  # pgrp
                continue
            for row in (stat.parent / "status").read_text().splitlines():
                if row.startswith("VmHWM:"):
                    peak = max(peak, int(row.split()[1]))
        except (OSError, IndexError, ValueError):
            continue
    return peak / 1024


def tail(path: pathlib.Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_ready(url: str, proc: subprocess.Popen, log: pathlib.Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{tail(log)}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready after {timeout:.0f} s ({url}):\n{tail(log)}")


def make_bodies(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    collected = (datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=8)))
                 - datetime.timedelta(hours=1)).replace(microsecond=0).isoformat()
    bodies = []
    for b in range(count):
        items = [{"client_id": str(uuid.uuid4()), "record_type": "person", "grid_code": GRID,
                  "action": "upsert", "data": person(rng, seed * 1_000_000 + b * BATCH + i),
                  "collected_at": collected, "base_version": None}
                 for i in range(BATCH)]
        bodies.append(json.dumps({"submissions": items}, ensure_ascii=False).encode())
    return bodies


def percentile(values: list, fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


# ---------------------------------------------------------------- clients

def client(target: dict, index: int, batches: int, seed: int, barrier, queue) -> None:
    """One phone-like client: log in, warm up, wait for the others, send, report."""
    out = {"index": index, "error": None, "latencies": [], "statuses": {}, "accepted": 0}
    try:
        bodies = make_bodies(seed, WARMUP + batches)
        session = requests.Session()
        headers = {"Content-Type": "application/json"}
        if target["kind"] == "gridcollect":
            username = f"bench{index + 1}"
            r = session.post(target["base"] + "/api/v1/auth/token",
                             json={"username": username, "password": PASSWORD}, timeout=30)
            if r.status_code != 200:
                raise RuntimeError(f"POST /api/v1/auth/token as {username}: "
                                   f"{r.status_code} {r.text[:300]}")
            headers["Authorization"] = "Bearer " + r.json()["token"]
        else:
            headers["X-Worker"] = f"bench{index + 1}"
        url = target["base"] + target["path"]

        def send(body):
            r = session.post(url, data=body, headers=headers, timeout=300)
            if r.status_code != 200:
                raise RuntimeError(f"POST {target['path']}: {r.status_code} {r.text[:300]}")
            results = r.json()["results"]
            if len(results) != BATCH:
                raise RuntimeError(f"POST {target['path']}: {len(results)} results for {BATCH}")
            for result in results:
                status = result["status"]
                out["statuses"][status] = out["statuses"].get(status, 0) + 1
                if status == "accepted":
                    out["accepted"] += 1
                    if "sample_accepted" not in out:
                        out["sample_accepted"] = result
                elif status != "invalid" and "sample_other" not in out:
                    out["sample_other"] = result

        for body in bodies[:WARMUP]:
            send(body)
        barrier.wait(timeout=300)
        out["start"] = time.monotonic()
        for body in bodies[WARMUP:]:
            t0 = time.monotonic()
            send(body)
            out["latencies"].append(time.monotonic() - t0)
        out["end"] = time.monotonic()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        out["error"] = f"client {index}: {type(exc).__name__}: {exc}"
        try:
            barrier.abort()
        except Exception:  # noqa: BLE001, S110 - the barrier may already be broken
            pass
    queue.put(out)


def load(target: dict, batches: int, seed: int) -> dict:
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(CLIENTS), ctx.Queue()
    procs = [ctx.Process(target=client, args=(target, i, batches, seed + i, barrier, queue))
             for i in range(CLIENTS)]
    for p in procs:
        p.start()
    try:
        outs = [queue.get(timeout=1800) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    errors = [o["error"] for o in outs if o["error"]]
    if errors:
        raise RuntimeError("; ".join(errors))
    latencies = [x for o in outs for x in o["latencies"]]
    statuses = {}
    for o in outs:
        for k, v in o["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    window = max(o["end"] for o in outs) - min(o["start"] for o in outs)
    return {"rate": CLIENTS * batches * BATCH / window, "window": window,
            "p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95),
            "statuses": statuses, "accepted": sum(o["accepted"] for o in outs),
            "samples": [o.get("sample_other") for o in outs if o.get("sample_other")]}


def check(name: str, run: dict, stored: int | None) -> str:
    odd = {k: v for k, v in run["statuses"].items() if k not in ("accepted", "invalid")}
    problems = []
    if odd:
        problems.append(f"statuses other than accepted/invalid: {odd}; e.g. {run['samples'][:1]}")
    if stored is None:
        note = "rows not counted (no submissions table): accepted taken from the results"
    elif stored != run["accepted"]:
        problems.append(f"{run['accepted']} accepted but {stored} rows stored")
        note = ""
    else:
        note = f"{stored} rows stored = accepted"
    if problems:
        raise RuntimeError(f"{name} run failed its check: " + "; ".join(problems))
    return note


def count_rows(path: pathlib.Path) -> int | None:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT count(*) FROM submissions").fetchone()[0]
    except sqlite3.OperationalError:
        return None
    finally:
        con.close()


# ---------------------------------------------------------------- the two servers

def run_baseline(tmp: pathlib.Path, run: int, batches: int, seed: int) -> dict:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench.ingest_baseline import create_db
    path = tmp / f"baseline-{run}.db"
    create_db(str(path))
    port = free_port()
    log = tmp / f"baseline-{run}.log"
    env = dict(os.environ, BENCH_INGEST_DB=str(path))
    proc = start([PY, "-m", "gunicorn", "-w", str(WORKERS), "-b", f"127.0.0.1:{port}",
                  "--timeout", "300", "bench.ingest_baseline:app"], log, env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/ingest", proc, log)
        result = load({"kind": "baseline", "base": base, "path": "/ingest"}, batches, seed)
        result["rss"] = peak_rss_mb(proc.pid)
        if proc.poll() is not None:
            raise RuntimeError(f"baseline server exited:\n{tail(log)}")
    finally:
        stop(proc)
    result["note"] = check("baseline", result, count_rows(path))
    return result


def cli(*args: str, stdin: str | None = None) -> None:
    done = subprocess.run([GRIDCOLLECT, *args], cwd=ROOT, input=stdin, capture_output=True,
                          text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"gridcollect {' '.join(args)}: exit {done.returncode}\n"
                           f"{done.stdout[-800:]}{done.stderr[-800:]}")


def run_gridcollect(tmp: pathlib.Path, run: int, batches: int, seed: int) -> dict:
    path = tmp / f"gridcollect-{run}.db"
    cli("init-db", "--db", str(path))
    cli("grids", "import", "examples/grids.geojson", "--db", str(path))
    for i in range(CLIENTS):
        cli("users", "add", f"bench{i + 1}", "--role", "worker", "--scope", GRID,
            "--password-stdin", "--db", str(path), stdin=PASSWORD)
    port = free_port()
    log = tmp / f"gridcollect-{run}.log"
    proc = start([PY, "server.py", "--host", "127.0.0.1", "--port", str(port), "--db", str(path),
                  "--workers", str(WORKERS)], log)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/api/v1/openapi.json", proc, log)
        result = load({"kind": "gridcollect", "base": base, "path": "/api/v1/submissions"},
                      batches, seed)
        result["rss"] = peak_rss_mb(proc.pid)
        if proc.poll() is not None:
            raise RuntimeError(f"gridcollect server exited:\n{tail(log)}")
    except Exception as exc:  # noqa: BLE001 - re-raised with the server log
        raise RuntimeError(f"{exc}\n--- server log tail ---\n{tail(log)}") from None
    finally:
        stop(proc)
    result["note"] = check("gridcollect", result, count_rows(path))
    return result


def summary(runs: list) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in ("rate", "p50", "p95", "rss")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="timed batches per client")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-only", action="store_true",
                        help="measure the baseline only (no server.py needed)")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every run")
    args = parser.parse_args(argv)

    baseline_runs, grid_runs = [], []
    with tempfile.TemporaryDirectory(prefix="gridcollect-ingest-") as tmp:
        tmp = pathlib.Path(tmp)
        for run in range(args.repeats):
            seed = 1000 * (run + 1)
            r = run_baseline(tmp, run, args.batches, seed)
            baseline_runs.append(r)
            if args.verbose:
                print(f"  [run {run + 1}] baseline     {r['rate']:>8,.0f} records/s "
                      f"p50 {r['p50'] * 1000:.0f} ms p95 {r['p95'] * 1000:.0f} ms "
                      f"{r['statuses']}; {r['note']}", file=sys.stderr, flush=True)
            if not args.baseline_only:
                r = run_gridcollect(tmp, run, args.batches, seed + 500)
                grid_runs.append(r)
                if args.verbose:
                    print(f"  [run {run + 1}] gridcollect  {r['rate']:>8,.0f} records/s "
                          f"p50 {r['p50'] * 1000:.0f} ms p95 {r['p95'] * 1000:.0f} ms "
                          f"{r['statuses']}; {r['note']}", file=sys.stderr, flush=True)

    def line(label, runs):
        s = summary(runs)
        return (f"{label:<66}{s['rate']:>7,.0f} records/s  (median of {len(runs)}; "
                f"batch p50 {s['p50'] * 1000:.0f} ms, p95 {s['p95'] * 1000:.0f} ms; "
                f"peak RSS per process {s['rss']:.0f} MB)")

    print(f"ingest, {CLIENTS} clients x {args.batches} batches x {BATCH} person records, "
          f"{WORKERS} server workers each")
    print(line("baseline (Flask + reused Cerberus + sqlite-utils, gunicorn -w 2):", baseline_runs))
    notes = {r["note"] for r in baseline_runs + grid_runs}
    if grid_runs:
        print(line("gridcollect server.py --workers 2:", grid_runs))
        rate, ratio = summary(grid_runs)["rate"], (summary(grid_runs)["rate"]
                                                   / summary(baseline_runs)["rate"])
        met = rate >= 10_000 and ratio >= 5
        print(f"ratio: {ratio:.1f}x   target: >= 10,000 records/s and >= 5x "
              f"({'met' if met else 'NOT met'})")
        print(f"peak RSS ratio (gridcollect / baseline): "
              f"{summary(grid_runs)['rss'] / summary(baseline_runs)['rss']:.2f}x")
    if any("not counted" in n for n in notes):
        print("note: gridcollect rows not counted (no submissions table); "
              "accepted count taken from the results")


if __name__ == "__main__":
    main()
