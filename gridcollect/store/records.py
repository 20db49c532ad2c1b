"""Master records and their history."""
from __future__ import annotations

import json

from .base import _json, _list_where

RECORD_COLUMNS = ("record_type", "key", "grid_code", "version", "retired", "data",
                  "created_at", "updated_at", "seq")
HISTORY_COLUMNS = ("seq", "record_type", "key", "version", "action", "submission_id",
                   "grid_code", "moved_from", "changes", "worker", "collected_at",
                   "confirmed_by", "confirmed_at")


def _record(row) -> dict:
    record = dict(row)
    record["data"] = json.loads(record["data"])
    record["retired"] = bool(record["retired"])
    return record


def get_record(db, record_type: str, key: str) -> dict | None:
    row = next(db.query("SELECT * FROM records WHERE record_type = ? AND key = ?",
                        [record_type, key]), None)
    return None if row is None else _record(row)


def get_records(db, keys) -> dict:
    """(record_type, key) -> master record, for those that exist."""
    keys, found = list(keys), {}
    for start in range(0, len(keys), 400):
        chunk = keys[start:start + 400]
        marks = ", ".join("(?, ?)" for _ in chunk)
        # a join on the VALUES, not a row-value IN: SQLite 3.40 scans the table for that
        for row in db.query(f"SELECT r.* FROM (VALUES {marks}) k JOIN records r"
                            f" ON r.record_type = k.column1 AND r.key = k.column2",
                            [v for pair in chunk for v in pair]):
            found[row["record_type"], row["key"]] = _record(row)
    return found


def put_records(db, records: list):
    """Insert or update master records, in order."""
    db.conn.executemany(
        f"INSERT INTO records ({', '.join(RECORD_COLUMNS)})"
        f" VALUES ({', '.join('?' * len(RECORD_COLUMNS))})"
        " ON CONFLICT (record_type, key) DO UPDATE SET grid_code = excluded.grid_code,"
        " version = excluded.version, retired = excluded.retired, data = excluded.data,"
        " updated_at = excluded.updated_at, seq = excluded.seq",
        [[_json(r[c]) if c == "data" else int(r[c]) if c == "retired" else r[c]
          for c in RECORD_COLUMNS] for r in records])


def add_history(db, entries: list):
    db.conn.executemany(
        f"INSERT INTO record_history ({', '.join(HISTORY_COLUMNS)})"
        f" VALUES ({', '.join('?' * len(HISTORY_COLUMNS))})",
        [[_json(e[c]) if c == "changes" else e[c] for c in HISTORY_COLUMNS] for e in entries])


def record_history(db, record_type: str, key: str) -> list:
    rows = []
    for row in db.query("SELECT * FROM record_history WHERE record_type = ? AND key = ?"
                        " ORDER BY version", [record_type, key]):
        row["changes"] = json.loads(row["changes"])
        rows.append(row)
    return rows


def list_records(db, record_type, *, prefixes, grid=None, changed_since=None, retired=None,
                 filters=(), after_seq=None, limit=50) -> list:
    """In the order they last changed; ``filters`` are ``(field, kind, values)`` with
    ``kind`` "list" (any value among the list's items) or "value" (equal to one)."""
    where, params = _list_where("grid_code", prefixes, grid, (
        ("record_type = ?", record_type), ("updated_at >= ?", changed_since),
        ("seq > ?", after_seq), ("retired = ?", None if retired is None else int(retired))))
    for field, kind, values in filters:
        path = "$." + _json(field)  # a field name of the standard, quoted as JSON
        marks = ", ".join("?" * len(values))
        if kind == "list":
            where += (f" AND EXISTS (SELECT 1 FROM json_each(records.data, ?)"
                      f" WHERE value IN ({marks}))")
        else:
            where += f" AND json_extract(data, ?) IN ({marks})"
        params += [path, *values]
    return [_record(row) for row in db.query(
        f"SELECT * FROM records WHERE {where} ORDER BY seq LIMIT ?", params + [limit])]


def count_records(db) -> dict:
    """record_type -> {"active", "retired"}."""
    counts = {}
    for record_type, retired, n in db.execute(
            "SELECT record_type, retired, count(*) FROM records GROUP BY 1, 2"):
        counts.setdefault(record_type, {"active": 0, "retired": 0})[
            "retired" if retired else "active"] = n
    return counts


def clear_records(db):
    """Forget every master record and its history (they are rebuilt from submissions)."""
    db.execute("DELETE FROM record_history")
    db.execute("DELETE FROM records")
