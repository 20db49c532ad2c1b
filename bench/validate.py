"""Validation throughput: gridcollect against a plain reused Cerberus validator.

    python bench/validate.py                 # full run: 1,000,000-row CSV for the CLI
    python bench/validate.py --csv-rows 100000

Prints, in one run and one process:
  1. a reused Cerberus Validator with the person standard's schema (the baseline);
  2. gridcollect's Standard.validate_many on one core, and its ratio to 1;
  3. `gridcollect validate` on a CSV file (both cores), rows/s and peak memory.
Each figure is the median of several repeats; 95% of the records are valid and
5% carry one realistic mistake, and both paths are checked to agree on them.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import os
import pathlib
import random
import resource
import statistics
import subprocess
import sys
import time

from stdnum.iso7064 import mod_11_2

from gridcollect import errors, ids, load_standards
from gridcollect.checks import Context

DATA = pathlib.Path(__file__).parent / "data"
REGIONS = ["420502", "420503", "420504", "420505", "420506", "420525", "420581", "110101"]
NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "欧阳晓明", "杨帆", "黄丽"]
GROUPS = ["独居老人", "残疾人", "低保对象", "退役军人", "留守儿童"]


def person(rng: random.Random, index: int) -> dict:
    birth = datetime.date(1930, 1, 1) + datetime.timedelta(days=rng.randrange(33000))
    body = f"{rng.choice(REGIONS)}{birth:%Y%m%d}{index % 1000:03d}"
    number = body + mod_11_2.calc_check_digit(body)
    record = {
        "id_number": number, "name": rng.choice(NAMES), "sex": ids.id_sex(number),
        "birth_date": birth.isoformat(), "ethnicity": rng.choice(["01", "01", "01", "15"]),
        "phone": f"{rng.choice(['138', '139', '150', '186', '133', '177', '199'])}"
                 f"{rng.randrange(10**8):08d}",
        "residence_type": rng.choice("1112"), "household_region": rng.choice(REGIONS),
        "house_code": f"420502001002003-{rng.randrange(1, 40):03d}-01-"
                      f"{rng.randrange(101, 1899):04d}",
        "relationship": rng.choice(["02", "10", "20", "30"]),
        "education": rng.choice(["21", "31", "61", "71"]), "marital_status": "20",
        "political_status": "13",
    }
    if rng.random() < 0.2:
        record["special_groups"] = [rng.choice(GROUPS)]
    if rng.random() < 0.05:  # the mistakes grid workers make
        mistake = rng.randrange(4)
        if mistake == 0:
            record["id_number"] = number[:-1] + ("0" if number[-1] != "0" else "1")
        elif mistake == 1:
            record["sex"] = "2" if record["sex"] == "1" else "1"
        elif mistake == 2:
            record["ethnicity"] = "57"
        else:
            del record["name"]
    return record


def median_rate(function, count, repeats):
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def write_csv(path: pathlib.Path, rows: int):
    rng = random.Random(7)
    columns = ["id_number", "name", "sex", "birth_date", "ethnicity", "phone", "residence_type",
               "household_region", "house_code", "relationship", "education", "marital_status",
               "political_status", "special_groups"]
    with open(path, "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for index in range(rows):
            record = person(rng, index)
            record["special_groups"] = ";".join(record.get("special_groups", []))
            writer.writerow([record.get(c, "") for c in columns])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--cerberus-records", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--csv-rows", type=int, default=1_000_000)
    args = parser.parse_args()

    standard = load_standards().effective("person")
    context = Context()
    rng = random.Random(1)
    records = [person(rng, i) for i in range(args.records)]
    sample = records[: args.cerberus_records]
    validator = standard.cerberus_validator(context)

    # the two must agree on every benchmark record, or the speed means nothing
    for record in sample:
        validator.validate(record)
        assert sorted(errors.from_cerberus(validator._errors)) == sorted(
            standard.check(record, context)[1]), record
    invalid = sum(1 for r in standard.validate_many(records) if not r.valid)

    cerberus_rate = median_rate(lambda: [validator.validate(r) for r in sample],
                                len(sample), args.repeats)
    fast_rate = median_rate(lambda: standard.validate_many(records), len(records), args.repeats)

    print(f"person standard {standard.version}: {len(standard.fields)} fields; "
          f"{len(records):,} records, {invalid / len(records):.1%} invalid; "
          f"median of {args.repeats}")
    print(f"  cerberus reused validator   {cerberus_rate:>10,.0f} records/s  1.00x (baseline)")
    print(f"  gridcollect validate_many   {fast_rate:>10,.0f} records/s  "
          f"{fast_rate / cerberus_rate:5.1f}x  (one core; target >= 20,000/s and >= 16x)")

    DATA.mkdir(exist_ok=True)
    path = DATA / f"persons-{args.csv_rows}.csv"
    if not path.exists():
        write_csv(path, args.csv_rows)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gridcollect", "validate", str(path),
                           "--type", "person"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    summary = done.stdout.decode().strip().splitlines()[-1]
    rate = args.csv_rows / elapsed
    print(f"  gridcollect validate CSV    {rate:>10,.0f} rows/s     {rate / cerberus_rate:5.1f}x  "
          f"({args.csv_rows:,} rows in {elapsed:.1f} s on {os.cpu_count()} cores, "
          f"peak RSS {peak_mb:.0f} MB, exit {done.returncode}: {summary})")


if __name__ == "__main__":
    main()
