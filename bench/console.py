"""Console pages on a city, beside the API calls that answer the same question.

    python bench/make_city.py /tmp/city.db      # once
    python bench/console.py /tmp/city.db [--requests 50]

Starts ``server.py --db CITY.db --workers 2`` on a free port, signs in to the console
(and to the API) as the supervisor of the district with the most submissions
(``sup-<district>``), and times one request at a time over real HTTP, each page
right after the API call(s) it matches:

  queue       /console/queue (the 100 oldest waiting)
              vs /api/v1/submissions?state=pending&limit=100
  submission  /console/submissions/<id>
              vs /api/v1/submissions/<id> + /api/v1/records/person/<key>
  monitor     /console/monitor?under=<district>
              vs /api/v1/monitor/grids?level=street&under=<district> + /monitor/fields
  record      /console/records/person/<key>  vs /api/v1/records/person/<key>

(<id>: the oldest pending update of a person already in the master table, so the page
has a diff and a history.) 3 untimed warm-up rounds, then ``--requests`` rounds.
Prints p50/p95 of each, the page's p95 as a ratio of its API calls', and what each
page ships to a browser with an empty cache (the page and its stylesheet, script and
icon, gzipped as sent). Targets: p95 < 150 ms, < 300 KB per page.
"""
from __future__ import annotations

import argparse
import pathlib
import re
import sqlite3
import sys
import tempfile
import time

import requests

BENCH = pathlib.Path(__file__).resolve().parent
PASSWORD = "bench-Passw0rd-2024"
WORKERS = 2
WARMUP = 3
TARGET_MS, TARGET_KB = 150, 300
ASSETS = ("/console/static/console.css", "/console/static/console.js",
          "/console/static/icon.svg")

import ingest  # noqa: E402 - bench/ is sys.path[0]: server start/stop, percentile


def sign_in(base: str, username: str) -> requests.Session:
    session = requests.Session()
    page = session.get(base + "/console/login", timeout=30)
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    response = session.post(base + "/console/login", timeout=30, allow_redirects=False,
                            data={"username": username, "password": PASSWORD, "csrf": token})
    if response.status_code != 303:
        raise RuntimeError(f"console sign-in as {username}: {response.status_code}")
    return session


def fetch(session, url, headers=None) -> requests.Response:
    response = session.get(url, headers=headers, timeout=60)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:300]}")
    return response


def shipped(session, url) -> int:
    """Bytes on the wire (gzipped as the server sends them) of one answer."""
    with session.get(url, headers={"Accept-Encoding": "gzip"}, stream=True,
                     timeout=60) as response:
        return len(response.raw.read(decode_content=False))


def targets(con, district: str) -> tuple:
    """(oldest pending update of an existing person in the district, that person's key)."""
    row = con.execute(
        "SELECT s.id, s.natural_key FROM submissions s JOIN records r"
        " ON r.record_type = 'person' AND r.key = s.natural_key"
        " WHERE s.state = 'pending' AND s.record_type = 'person'"
        " AND s.grid_code >= ? AND s.grid_code < ? ORDER BY s.id LIMIT 1",
        [district, district + ":"]).fetchone()
    if row is None:
        raise RuntimeError(f"no pending update of a person in {district}")
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=pathlib.Path)
    parser.add_argument("--requests", type=int, default=50, help="timed rounds")
    args = parser.parse_args(argv)
    if not args.db.exists():
        parser.error(f"{args.db}: no such file (build one with bench/make_city.py)")
    con = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    district, in_district = con.execute(
        "SELECT substr(grid_code, 1, 6), count(*) FROM submissions GROUP BY 1"
        " ORDER BY 2 DESC LIMIT 1").fetchone()
    n_grids, = con.execute("SELECT count(*) FROM grids WHERE code >= ? AND code < ?",
                           [district, district + ":"]).fetchone()
    pending, = con.execute("SELECT count(*) FROM submissions WHERE state = 'pending' AND"
                           " grid_code >= ? AND grid_code < ?",
                           [district, district + ":"]).fetchone()
    sid, key = targets(con, district)
    pages = {  # name -> (console page, [matching API calls])
        "queue": ("/console/queue", ["/api/v1/submissions?state=pending&limit=100"]),
        "submission": (f"/console/submissions/{sid}",
                       [f"/api/v1/submissions/{sid}", f"/api/v1/records/person/{key}"]),
        "monitor": (f"/console/monitor?under={district}",
                    [f"/api/v1/monitor/grids?level=street&under={district}",
                     f"/api/v1/monitor/fields?under={district}&limit=10"]),
        "record": (f"/console/records/person/{key}", [f"/api/v1/records/person/{key}"]),
    }
    times = {name: {"page": [], "api": []} for name in pages}
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="gridcollect-console-") as tmp:
        port = ingest.free_port()
        log = pathlib.Path(tmp) / "server.log"
        proc = ingest.start([sys.executable, "server.py", "--host", "127.0.0.1", "--port",
                             str(port), "--db", str(args.db), "--workers", str(WORKERS)], log)
        base = f"http://127.0.0.1:{port}"
        try:
            ingest.wait_ready(base + "/api/v1/openapi.json", proc, log, timeout=120)
            username = f"sup-{district}"
            console = sign_in(base, username)
            api = requests.Session()
            token = api.post(base + "/api/v1/auth/token", timeout=30, json={
                "username": username, "password": PASSWORD}).json()["token"]
            api.headers["Authorization"] = "Bearer " + token
            for _ in range(WARMUP + args.requests):
                for name, (page, calls) in pages.items():
                    start = time.perf_counter()
                    for call in calls:
                        fetch(api, base + call)
                    times[name]["api"].append(time.perf_counter() - start)
                    start = time.perf_counter()
                    fetch(console, base + page)
                    times[name]["page"].append(time.perf_counter() - start)
            assets = sum(shipped(console, base + asset) for asset in ASSETS)
            for name, (page, _) in pages.items():
                sizes[name] = (shipped(console, base + page), assets)
        except Exception as exc:  # noqa: BLE001 - re-raised with the server log
            raise RuntimeError(f"{exc}\n--- server log tail ---\n{ingest.tail(log)}") from None
        finally:
            ingest.stop(proc)

    def p(values, fraction):
        return ingest.percentile(values[WARMUP:], fraction) * 1000

    print(f"console on {args.db}: district {district} ({in_district:,} submissions, "
          f"{pending:,} pending, {n_grids:,} grids) as sup-{district}; {args.requests} rounds, "
          f"server.py --workers {WORKERS}")
    slow, big = [], []
    for name, (page, calls) in pages.items():
        ours, theirs = times[name]["page"], times[name]["api"]
        page_bytes, asset_bytes = sizes[name]
        total_kb = (page_bytes + asset_bytes) / 1024
        if p(ours, .95) >= TARGET_MS:
            slow.append(name)
        if total_kb >= TARGET_KB:
            big.append(name)
        print(f"  {name:<11} page p50 {p(ours, .5):7.1f} ms  p95 {p(ours, .95):7.1f} ms | "
              f"API p50 {p(theirs, .5):7.1f} ms  p95 {p(theirs, .95):7.1f} ms | "
              f"page/API p95 {p(ours, .95) / p(theirs, .95):4.2f}x | shipped "
              f"{page_bytes / 1024:6.1f} KB + {asset_bytes / 1024:.1f} KB assets")
        print(f"  {'':<11} {page}  vs  {' + '.join(calls)}")
    def verdict(missed):
        return "NOT met by " + ", ".join(missed) if missed else "met"

    print(f"targets: p95 < {TARGET_MS} ms ({verdict(slow)}); < {TARGET_KB} KB shipped per "
          f"page ({verdict(big)})")


if __name__ == "__main__":
    main()
