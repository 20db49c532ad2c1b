"""Export speed and memory: a release table as CSV against the ``sqlite3`` command line.

    python bench/export.py CITY.db [--repeats 3] [--table person]

CITY.db comes from ``bench/make_city.py``. The script makes a release of it
(``gridcollect release``, timed), then, alternating, ``--repeats`` times each:

  1. baseline: ``sqlite3 -csv -header RELEASE.sqlite "SELECT * FROM person"``;
  2. ``gridcollect export <id> person`` (an admin's export: every column, clear);
  3. ``gridcollect export <id> person --masked`` (as an analyst: personal fields
     masked in SQL, the secret column left out, formula-safe cells).

Each writes to /dev/null. Prints rows/s, the ratio to the baseline (higher is
better; the target is at least 0.5) and the peak resident memory of each
process (target: under 200 MB), each the median over the repeats. The output
of one export is read back with the csv module and must have every row.
"""
from __future__ import annotations

import argparse
import csv
import os
import pathlib
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

GRIDCOLLECT = str(pathlib.Path(sys.executable).with_name("gridcollect"))


def timed(args) -> tuple:
    """(seconds, peak RSS in MB) of a child process writing to /dev/null."""
    with open(os.devnull, "wb") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(args, stdout=sink)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(args)}")
    return elapsed, usage.ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--table", default="person")
    args = parser.parse_args()
    started = time.perf_counter()
    made = subprocess.run([GRIDCOLLECT, "release", "--note", "bench", "--db", args.db],
                          check=True, capture_output=True, text=True).stdout
    release_seconds = time.perf_counter() - started
    release_id = re.match(r"release (\d+)", made).group(1)
    path = made.strip().splitlines()[-1]
    rows = sqlite3.connect(path).execute(f"SELECT count(*) FROM {args.table}").fetchone()[0]
    print(f"release {release_id}: {made.splitlines()[0].split(': ', 1)[1]} "
          f"in {release_seconds:.1f} s ({os.path.getsize(path) / 2**20:.0f} MB)")

    runs = {
        "sqlite3 -csv": ["sqlite3", "-csv", "-header", path, f"SELECT * FROM {args.table}"],
        "gridcollect export": [GRIDCOLLECT, "export", release_id, args.table, "--db", args.db],
        "gridcollect export --masked": [GRIDCOLLECT, "export", release_id, args.table,
                                        "--masked", "--db", args.db],
    }
    results = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, command in runs.items():
            results[name].append(timed(command))

    with tempfile.NamedTemporaryFile(suffix=".csv") as out:
        subprocess.run(runs["gridcollect export --masked"] + ["-o", out.name], check=True)
        with open(out.name, encoding="utf-8-sig", newline="") as handle:
            read_back = sum(1 for _ in csv.DictReader(handle))
    assert read_back == rows, (read_back, rows)

    base = statistics.median(s for s, _ in results["sqlite3 -csv"])
    print(f"{rows:,} rows of {args.table}; median of {args.repeats} runs each")
    print(f"{'':30} {'seconds':>8} {'rows/s':>11} {'speed vs sqlite3':>17} {'peak RSS':>9}")
    for name, samples in results.items():
        seconds = statistics.median(s for s, _ in samples)
        rss = statistics.median(m for _, m in samples)
        print(f"{name:30} {seconds:8.2f} {rows / seconds:11,.0f} {base / seconds:16.2f}x "
              f"{rss:7.0f} MB")
    print("targets: at least 0.5x the sqlite3 command line, under 200 MB")


if __name__ == "__main__":
    main()
