"""Moves between grids: requests that wait for the agreement of the grid a record is in."""
from __future__ import annotations

from .base import _list_where

_MOVE_SELECT = """
    SELECT m.submission_id AS id, m.record_type, m.key, m.from_grid, s.grid_code AS to_grid,
           s.worker, s.collected_at, m.requested_by, m.requested_at, m.state, m.decided_by,
           m.decided_at, m.note
    FROM moves m JOIN submissions s ON s.id = m.submission_id"""


def request_moves(db, requests: list):
    """Open requests ``(submission_id, record_type, key, from_grid, requested_by, at)``."""
    db.conn.executemany(
        "INSERT INTO moves (submission_id, record_type, key, from_grid, requested_by,"
        " requested_at, state) VALUES (?, ?, ?, ?, ?, ?, 'open')", requests)


def get_move(db, submission_id: int) -> dict | None:
    return next(db.query(_MOVE_SELECT + " WHERE m.submission_id = ?", [submission_id]), None)


def list_open_moves(db, *, prefixes, grid=None, after_id=None, limit=50) -> list:
    """Open requests for records in grids under the prefixes, oldest first."""
    where, params = _list_where("m.from_grid", prefixes, grid, (("m.submission_id > ?",
                                                                 after_id),))
    return list(db.query(f"{_MOVE_SELECT} WHERE m.state = 'open' AND {where}"
                         f" ORDER BY m.submission_id LIMIT ?", params + [limit]))


def decide_moves(db, submission_ids, state: str, by: str, at: str, note):
    """Close open requests; the caller holds the write lock and has just read them."""
    if not submission_ids:
        return
    cursor = db.conn.executemany(
        "UPDATE moves SET state = ?, decided_by = ?, decided_at = ?, note = ?"
        " WHERE submission_id = ? AND state = 'open'",
        [(state, by, at, note, sid) for sid in submission_ids])
    assert cursor.rowcount == len(submission_ids), "decided outside the write lock"


def follow_moves(db, moved: list):
    """Open requests for records that moved ``(record_type, key, grid_code)`` now wait
    for the grid the record is in."""
    db.conn.executemany("UPDATE moves SET from_grid = ? WHERE record_type = ? AND key = ?"
                        " AND state = 'open'",
                        [(grid, record_type, key) for record_type, key, grid in moved])
