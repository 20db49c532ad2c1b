"""The connection, the write transaction, and the SQL pieces every part shares.

SQLite in WAL mode, opened through sqlite-utils. Writers hold ``BEGIN
IMMEDIATE`` transactions (``with write(db):``) so that several server processes
on one file queue for the write lock instead of failing with "database is
locked"; readers never wait for writers.
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import sqlite3

import sqlite_utils

MAX_ROW_ID = 2 ** 63 - 1  # SQLite's largest INTEGER PRIMARY KEY
BUSY_TIMEOUT_S = 30


class Busy(Exception):
    """The database stayed locked longer than the busy timeout."""


class MissingFolder(sqlite3.OperationalError):
    """The database's folder does not exist (SQLite would say only "unable to open")."""


def connect(path) -> sqlite_utils.Database:
    folder = os.path.dirname(os.path.abspath(path))
    if str(path) != ":memory:" and not os.path.isdir(folder):
        raise MissingFolder(f"the folder {folder} does not exist")
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                           check_same_thread=False)
    db = sqlite_utils.Database(conn, execute_plugins=False)
    db.write_lock_path = None if str(path) == ":memory:" else f"{path}-writelock"
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
    db.execute("PRAGMA foreign_keys=ON")
    return db


@contextlib.contextmanager
def write(db: sqlite_utils.Database):
    """One write transaction, taken up front (``BEGIN IMMEDIATE``).

    Writers of one file first queue on a lock file: the kernel wakes the next
    one the moment the lock is free, where SQLite's busy handler would sleep
    and poll (1, 2, 5, 10, 15 … ms) long after the other writer has finished.
    SQLite's own locking still guarantees correctness; the lock file only
    orders the queue. Opened per transaction, so it is never leaked or shared.
    """
    path = getattr(db, "write_lock_path", None)
    lock = None if path is None else os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    if lock is not None:
        fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise Busy(str(exc)) from None
        try:
            yield db
        except BaseException:
            if db.conn.in_transaction:
                db.execute("ROLLBACK")
            raise
        try:
            db.execute("COMMIT")
        except BaseException:
            if db.conn.in_transaction:
                db.execute("ROLLBACK")
            raise
    finally:
        if lock is not None:
            os.close(lock)  # releases the flock


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _scope_sql(column: str, prefixes) -> tuple:
    """A WHERE clause restricting ``column`` to grid codes under the prefixes, as
    ranges an index can serve (grid codes are digits; ":" sorts after "9")."""
    if prefixes is None:  # everything
        return "1", []
    if not prefixes:
        return "0", []
    clause = " OR ".join(f"({column} >= ? AND {column} < ?)" for _ in prefixes)
    return f"({clause})", [bound for p in prefixes for bound in (p, p + ":")]


def _list_where(column: str, prefixes, grid, conditions) -> tuple:
    """The WHERE clause of a list: the caller's scope, the ``grid`` prefix asked for,
    and each ``(clause, value)`` of ``conditions`` whose value is not None."""
    where, params = _scope_sql(column, prefixes)
    for clause, value in conditions:
        if value is not None:
            where += f" AND {clause}"
            params.append(value)
    if grid is not None:
        grid_where, grid_params = _scope_sql(column, [grid])
        where += " AND " + grid_where
        params += grid_params
    return where, params


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- cursors ---------------------------------------------------------------------

def encode_cursor(value) -> str:
    return base64.urlsafe_b64encode(_json(value).encode()).decode().rstrip("=")


def decode_cursor(text: str):
    """The value inside a cursor; ValueError when it is not one of ours."""
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError) as exc:
        raise ValueError("not a cursor") from exc
