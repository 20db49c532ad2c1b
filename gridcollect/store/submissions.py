"""Submissions, their reviews and photos, and invalid attempts."""
from __future__ import annotations

import json

from .base import _json, _list_where

SUBMISSION_COLUMNS = ("worker", "client_id", "record_type", "grid_code", "action",
                      "natural_key", "data", "state", "collected_at", "received_at",
                      "standard_version", "base_version", "replaces")


def existing_submissions(db, worker: str, client_ids) -> dict:
    """client_id -> id of this worker's submissions already stored."""
    found = {}
    client_ids = list(client_ids)
    for start in range(0, len(client_ids), 500):
        chunk = client_ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for client_id, sid in db.execute(
                f"SELECT client_id, id FROM submissions WHERE worker = ?"
                f" AND client_id IN ({marks})", [worker, *chunk]):
            found[client_id] = sid
    return found


def insert_submissions(db, rows: list):
    """Store submissions (``data`` a dict); read their ids back by client_id.

    Their monitoring figures are added per batch (a few rows: the grids of a batch
    and their areas), not per submission by a trigger: a trigger's five upserts
    per row cost more than storing the row."""
    db.conn.executemany(
        f"INSERT INTO submissions ({', '.join(SUBMISSION_COLUMNS)})"
        f" VALUES ({', '.join('?' * len(SUBMISSION_COLUMNS))})",
        [[row[c] if c != "data" else _json(row["data"]) for c in SUBMISSION_COLUMNS]
         for row in rows])
    areas, workers = {}, {}
    for row in rows:
        grid, pending, at = row["grid_code"], row["state"] == "pending", row["received_at"]
        for area in (grid[:6], grid[:9], grid[:12], grid, ""):
            figures = areas.setdefault(area, [0, 0, at])
            figures[0] += 1
            figures[1] += pending
            figures[2] = max(figures[2], at)
        figures = workers.setdefault((grid, row["worker"]), [0, at])
        figures[0] += 1
        figures[1] = max(figures[1], at)
    db.conn.executemany("""
        INSERT INTO monitor_areas (area, submitted, pending, last_activity) VALUES (?, ?, ?, ?)
        ON CONFLICT (area) DO UPDATE SET submitted = submitted + excluded.submitted,
          pending = pending + excluded.pending,
          last_activity = max(coalesce(last_activity, ''), excluded.last_activity)""",
                        [(area, *figures) for area, figures in areas.items()])
    db.conn.executemany("""
        INSERT INTO monitor_workers (grid_code, worker, submitted, last_activity)
        VALUES (?, ?, ?, ?)
        ON CONFLICT DO UPDATE SET submitted = submitted + excluded.submitted,
          last_activity = max(coalesce(last_activity, ''), excluded.last_activity)""",
                        [(*key, *figures) for key, figures in workers.items()])


def add_invalid_attempts(db, rows: list):
    db.conn.executemany(
        "INSERT INTO invalid_attempts (worker, client_id, record_type, grid_code, at, errors)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(r["worker"], r["client_id"], r["record_type"], r["grid_code"], r["at"],
          _json(r["errors"])) for r in rows])


_SUBMISSION_SELECT = """
    SELECT s.*, r.id AS replaced_by FROM submissions s
    LEFT JOIN submissions r ON r.replaces = s.id"""


def _submission(row) -> dict:
    submission = dict(row)
    submission["data"] = json.loads(submission["data"])
    submission["conflict"] = (None if submission["conflict"] is None
                              else json.loads(submission["conflict"]))
    return submission


def get_submission(db, submission_id: int) -> dict | None:
    row = next(db.query(_SUBMISSION_SELECT + " WHERE s.id = ?", [submission_id]), None)
    return None if row is None else _submission(row)


def get_submissions(db, ids) -> dict:
    ids = list(ids)
    marks = ",".join("?" * len(ids))
    return {row["id"]: _submission(row)
            for row in db.query(_SUBMISSION_SELECT + f" WHERE s.id IN ({marks})", ids)}


def list_submissions(db, *, prefixes, worker=None, state=None, grid=None, record_type=None,
                     since=None, until=None, before_id=None, limit=50) -> list:
    """Newest first; ``prefixes`` limits the grids (None: all), ``worker`` the sender."""
    where, params = _list_where("s.grid_code", prefixes, grid, (
        ("s.worker = ?", worker), ("s.state = ?", state), ("s.record_type = ?", record_type),
        ("s.received_at >= ?", since), ("s.received_at < ?", until), ("s.id < ?", before_id)))
    return [_submission(row) for row in db.query(
        f"{_SUBMISSION_SELECT} WHERE {where} ORDER BY s.id DESC LIMIT ?", params + [limit])]


# the states a supervisor's review queue holds; a returned one until it is corrected
QUEUE_STATES = ("pending", "conflict", "returned")
_UNCORRECTED = "NOT EXISTS (SELECT 1 FROM submissions c WHERE c.replaces = s.id)"


def _queue_where(prefixes, states, grid, record_type, worker, since, until) -> tuple:
    parts = [f"s.state = '{state}'" + (f" AND {_UNCORRECTED}" if state == "returned" else "")
             for state in QUEUE_STATES if state in states]
    where, params = _list_where("s.grid_code", prefixes, grid, (
        ("s.record_type = ?", record_type), ("s.worker = ?", worker),
        ("s.received_at >= ?", since), ("s.received_at < ?", until)))
    return f"{where} AND ({' OR '.join(f'({p})' for p in parts) or '0'})", params


def review_queue(db, *, prefixes, states=QUEUE_STATES, grid=None, record_type=None,
                 worker=None, since=None, until=None, after_id=None, newest_first=False,
                 limit=50) -> list:
    """Submissions waiting for a supervisor (or, returned, for their worker's
    correction), oldest first unless ``newest_first``; ``after_id`` pages on."""
    where, params = _queue_where(prefixes, states, grid, record_type, worker, since, until)
    if after_id is not None:
        where += " AND s.id " + ("< ?" if newest_first else "> ?")
        params.append(after_id)
    order = "DESC" if newest_first else "ASC"
    return [_submission(row) for row in db.query(
        f"{_SUBMISSION_SELECT} WHERE {where} ORDER BY s.id {order} LIMIT ?",
        params + [limit])]


def queue_counts(db, *, prefixes, grid=None, record_type=None, worker=None, since=None,
                 until=None) -> dict:
    """state -> how many submissions of the queue's filters are in it."""
    where, params = _queue_where(prefixes, QUEUE_STATES, grid, record_type, worker, since,
                                 until)
    counts = dict.fromkeys(QUEUE_STATES, 0)
    counts.update(db.execute(f"SELECT s.state, count(*) FROM submissions s WHERE {where}"
                             f" GROUP BY s.state", params).fetchall())
    return counts


def awaiting_correction(db, worker) -> dict:
    """(record_type, natural_key) -> id of the worker's latest returned, uncorrected
    submission of that record."""
    rows = db.execute("""
        SELECT s.record_type, s.natural_key, max(s.id) FROM submissions s
        WHERE s.worker = ? AND s.state = 'returned' AND s.natural_key IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM submissions r WHERE r.replaces = s.id)
        GROUP BY s.record_type, s.natural_key""", [worker])
    return {(record_type, key): sid for record_type, key, sid in rows}


def set_reviews(db, reviews: list):
    """Record reviews ``(id, state it was in, new state, by, at, note, merge_seq,
    conflict)``; the caller holds the write lock and has just read those states."""
    if not reviews:
        return
    cursor = db.conn.executemany(
        "UPDATE submissions SET state = ?, review_by = ?, review_at = ?, review_note = ?,"
        " merge_seq = ?, conflict = ? WHERE id = ? AND state = ?",
        [(state, by, at, note, merge_seq, None if conflict is None else _json(conflict), sid,
          was) for sid, was, state, by, at, note, merge_seq, conflict in reviews])
    assert cursor.rowcount == len(reviews), "reviewed outside the write lock"


def last_merge_seq(db) -> int:
    # (the WHERE lets SQLite read the end of the partial index instead of every row)
    return db.execute("SELECT coalesce(max(merge_seq), 0) FROM submissions"
                      " WHERE merge_seq IS NOT NULL").fetchone()[0]


def merged_in_order(db):
    """Every merged (confirmed) submission, in the order they were merged."""
    for row in db.query(_SUBMISSION_SELECT + " WHERE s.merge_seq IS NOT NULL"
                        " ORDER BY s.merge_seq"):
        yield _submission(row)




# --- photos ----------------------------------------------------------------------

def add_photo(db, submission_id, sha256, content_type, size, added_by, now) -> bool:
    """False when this photo is already attached (a retried upload)."""
    cursor = db.execute("INSERT OR IGNORE INTO photos VALUES (?, ?, ?, ?, ?, ?)",
                        [submission_id, sha256, content_type, size, added_by, now])
    return cursor.rowcount == 1


def photos_of(db, submission_ids) -> dict:
    out = {sid: [] for sid in submission_ids}
    ids = list(out)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for row in db.query(f"SELECT * FROM photos WHERE submission_id IN"
                            f" ({','.join('?' * len(chunk))}) ORDER BY added_at", chunk):
            out[row["submission_id"]].append(row)
    return out


def get_photo(db, submission_id, sha256) -> dict | None:
    return next(db.query("SELECT * FROM photos WHERE submission_id = ? AND sha256 = ?",
                         [submission_id, sha256]), None)
