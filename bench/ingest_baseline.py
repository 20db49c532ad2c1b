"""Baseline for bench/ingest.py: a plain Flask ingest endpoint.

What a competent developer would write in an afternoon: one reused Cerberus
validator per worker process (the person standard's schema and custom rules),
valid items stored with sqlite-utils in one ``insert_all`` per batch.

    BENCH_INGEST_DB=/tmp/x.db python -m gunicorn -w 2 -b 127.0.0.1:8001 bench.ingest_baseline:app

``create_db(path)`` makes the database (WAL, UNIQUE (worker, client_id));
call it once before the server starts. The worker is taken from the
``X-Worker`` header (there is no authentication in the baseline).
"""
from __future__ import annotations

import datetime
import json
import os

import sqlite_utils
from flask import Flask, jsonify, request

from gridcollect import load_standards

GRID = "420502001002003"


def create_db(path: str) -> None:
    db = sqlite_utils.Database(path)
    db.enable_wal()
    db["submissions"].create({
        "id": int, "worker": str, "client_id": str, "record_type": str, "grid_code": str,
        "action": str, "data": str, "collected_at": str, "received_at": str,
        "base_version": int,
    }, pk="id")
    db["submissions"].create_index(["worker", "client_id"], unique=True)
    db.close()


app = Flask(__name__)

# built once per worker process, at import (gunicorn imports the app after the fork)
standard = load_standards().effective("person", GRID)
validator = standard.cerberus_validator()
_database = None


def database() -> sqlite_utils.Database:
    """This worker's connection, opened on first use (importing opens no file)."""
    global _database
    if _database is None:
        _database = sqlite_utils.Database(os.environ["BENCH_INGEST_DB"])
        _database.execute("PRAGMA journal_mode=WAL")
        _database.execute("PRAGMA busy_timeout=30000")
    return _database


@app.post("/ingest")
def ingest():
    worker = request.headers.get("X-Worker", "anonymous")
    items = request.get_json()["submissions"]
    received_at = datetime.datetime.now(datetime.UTC).isoformat()
    results, rows = [], []
    for item in items:
        if validator.validate(item["data"]):
            rows.append({
                "worker": worker, "client_id": item["client_id"],
                "record_type": item["record_type"], "grid_code": item["grid_code"],
                "action": item["action"],
                "data": json.dumps(item["data"], ensure_ascii=False),
                "collected_at": item["collected_at"], "received_at": received_at,
                "base_version": item.get("base_version"),
            })
            results.append({"client_id": item["client_id"], "status": "accepted",
                            "errors": None})
        else:
            results.append({"client_id": item["client_id"], "status": "invalid",
                            "errors": validator.errors})
    if rows:
        db = database()
        with db.conn:  # one transaction per batch
            db["submissions"].insert_all(rows)
    return jsonify({"results": results})
