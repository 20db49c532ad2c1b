"""Every database query, one function each, and the numbered migrations.

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
import pathlib
import sqlite3
import urllib.request

import sqlite_utils

MAX_ROW_ID = 2 ** 63 - 1  # SQLite's largest INTEGER PRIMARY KEY
BUSY_TIMEOUT_S = 30


class Busy(Exception):
    """The database stayed locked longer than the busy timeout."""


def connect(path) -> sqlite_utils.Database:
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


# --- migrations ------------------------------------------------------------------

def _m1_accounts_grids_submissions_audit(db):
    db["users"].create({"username": str, "role": str, "scope": str, "password_hash": str,
                        "unmasked": int, "disabled": int, "created_at": str,
                        "updated_at": str}, pk="username", not_null={"role", "scope"})
    db["tokens"].create({"token_hash": str, "username": str, "created_at": str,
                         "expires_at": str, "revoked_at": str}, pk="token_hash",
                        foreign_keys=[("username", "users", "username")])
    db["tokens"].create_index(["username"])
    db["login_failures"].create({"id": int, "key": str, "at": str}, pk="id")
    db["login_failures"].create_index(["key", "at"])
    db["grids"].create({"code": str, "name": str, "geometry": str, "revision": int,
                        "imported_at": str}, pk="code")
    db.execute("""
        CREATE TABLE submissions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            worker TEXT NOT NULL, client_id TEXT NOT NULL,
            record_type TEXT NOT NULL, grid_code TEXT NOT NULL, action TEXT NOT NULL,
            natural_key TEXT, data TEXT NOT NULL, state TEXT NOT NULL,
            collected_at TEXT NOT NULL, received_at TEXT NOT NULL,
            standard_version TEXT NOT NULL, base_version INTEGER,
            replaces INTEGER REFERENCES submissions(id),
            review_by TEXT, review_at TEXT, review_note TEXT,
            UNIQUE (worker, client_id))""")
    # a returned submission is corrected at most once
    db.execute("CREATE UNIQUE INDEX submissions_replaces ON submissions(replaces)"
               " WHERE replaces IS NOT NULL")
    db["submissions"].create_index(["grid_code", "id"])
    db["submissions"].create_index(["state", "grid_code"])
    db["submissions"].create_index(["worker", "id"])
    db["submissions"].create_index(["worker", "state"])
    db["invalid_attempts"].create({"id": int, "worker": str, "client_id": str,
                                   "record_type": str, "grid_code": str, "at": str,
                                   "errors": str}, pk="id")
    db["invalid_attempts"].create_index(["grid_code", "at"])
    db["photos"].create({"submission_id": int, "sha256": str, "content_type": str,
                         "size": int, "added_by": str, "added_at": str},
                        pk=("submission_id", "sha256"),
                        foreign_keys=[("submission_id", "submissions", "id")])
    db.execute("""
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL,
            action TEXT NOT NULL, object_type TEXT, object_id TEXT, detail TEXT)""")
    db["audit"].create_index(["actor", "id"])
    db["audit"].create_index(["object_type", "object_id"])
    for event in ("UPDATE", "DELETE"):  # the audit log is append-only
        db.execute(f"""CREATE TRIGGER audit_no_{event.lower()} BEFORE {event} ON audit
                       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""")


def _m2_login_attempts_in_flight(db):
    # a login attempt is counted (pending = 1) before its password hash is computed
    db.execute("ALTER TABLE login_failures ADD COLUMN pending INTEGER NOT NULL DEFAULT 0")


# Monitoring figures are kept per area: a grid, and each of its community, street,
# district and the whole city ("") — so any roll-up is one indexed lookup.
def _areas(grid: str) -> list:
    """The areas a grid code counts in: its district, street, community, itself, the city."""
    return [f"substr({grid}, 1, 6)", f"substr({grid}, 1, 9)", f"substr({grid}, 1, 12)", grid,
            "''"]


def _area_list(grid: str) -> str:
    return ", ".join(_areas(grid))


def _area_rows(grid: str, *values) -> str:
    """VALUES rows ``(area, *values)``, one per area the grid counts in."""
    rest = "".join(", " + v for v in values)
    return ", ".join(f"({area}{rest})" for area in _areas(grid))


_STATE_COLUMNS = ("pending", "confirmed", "rejected", "returned", "conflict")
_LEVELS = (0, 6, 9, 12, 15)  # city, district, street, community, grid
# review time: from receipt to the review that settled it (a conflict is not settled)
_RESOLVED = "{s}.state IN ('confirmed', 'rejected', 'returned')"
# kept as a histogram to three significant figures (60, 185, 1230, 0.004 s): a median
# as exact as anyone reads it, and a review adds to a handful of counters, not rows
_REVIEW_SECONDS = ("CAST(printf('%.3g', (julianday({s}.review_at) - julianday({s}.received_at))"
                   " * 86400) AS REAL)")


def _m3_master_records_monitor_releases(db):
    db.execute("ALTER TABLE submissions ADD COLUMN merge_seq INTEGER")  # order of merging
    db.execute("ALTER TABLE submissions ADD COLUMN conflict TEXT")  # why a merge stopped
    # submissions confirmed before merging existed are merged in the order of their review
    # (``workflow.migrate`` then rebuilds the master records from them)
    db.execute("UPDATE submissions SET merge_seq = o.n FROM (SELECT id, row_number() OVER"
               " (ORDER BY review_at, id) AS n FROM submissions WHERE state = 'confirmed') o"
               " WHERE submissions.id = o.id")
    db.execute("CREATE UNIQUE INDEX submissions_merge_seq ON submissions(merge_seq)"
               " WHERE merge_seq IS NOT NULL")
    db.execute("DROP INDEX idx_submissions_state_grid_code")
    db["submissions"].create_index(["state", "grid_code", "received_at"])
    db.execute("""
        CREATE TABLE records (
            record_type TEXT NOT NULL, key TEXT NOT NULL, grid_code TEXT NOT NULL,
            version INTEGER NOT NULL, retired INTEGER NOT NULL, data TEXT NOT NULL,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL, seq INTEGER NOT NULL,
            UNIQUE (record_type, key))""")  # rows appended; only the key index is sorted
    db.execute("CREATE UNIQUE INDEX records_seq ON records(record_type, seq)")
    db.execute("CREATE INDEX records_grid ON records(record_type, grid_code, seq)")
    db.execute("CREATE INDEX records_updated ON records(record_type, updated_at)")
    db.execute("""
        CREATE TABLE record_history (
            seq INTEGER PRIMARY KEY, record_type TEXT NOT NULL, key TEXT NOT NULL,
            version INTEGER NOT NULL, action TEXT NOT NULL,
            submission_id INTEGER NOT NULL REFERENCES submissions(id),
            grid_code TEXT NOT NULL, moved_from TEXT, changes TEXT NOT NULL,
            worker TEXT NOT NULL, collected_at TEXT NOT NULL,
            confirmed_by TEXT NOT NULL, confirmed_at TEXT NOT NULL)""")
    db.execute("CREATE INDEX record_history_key ON record_history(record_type, key, version)")
    db.execute("""
        CREATE TABLE releases (
            id INTEGER PRIMARY KEY AUTOINCREMENT, state TEXT NOT NULL,
            created_at TEXT NOT NULL, created_by TEXT NOT NULL, note TEXT NOT NULL,
            counts TEXT, standard_versions TEXT, file TEXT NOT NULL, size INTEGER,
            sha256 TEXT)""")
    db.execute(f"""
        CREATE TABLE monitor_areas (
            area TEXT PRIMARY KEY, submitted INTEGER NOT NULL DEFAULT 0,
            {", ".join(f"{c} INTEGER NOT NULL DEFAULT 0" for c in _STATE_COLUMNS)},
            invalid_attempts INTEGER NOT NULL DEFAULT 0, reviewed INTEGER NOT NULL DEFAULT 0,
            last_activity TEXT) WITHOUT ROWID""")
    db.execute("CREATE TABLE monitor_review_times (area TEXT NOT NULL, seconds REAL NOT NULL,"
               " count INTEGER NOT NULL, PRIMARY KEY (area, seconds)) WITHOUT ROWID")
    db.execute("""
        CREATE TABLE monitor_records (
            area TEXT NOT NULL, record_type TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (area, record_type)) WITHOUT ROWID""")
    db.execute("""
        CREATE TABLE monitor_workers (
            grid_code TEXT NOT NULL, worker TEXT NOT NULL,
            submitted INTEGER NOT NULL DEFAULT 0, invalid_attempts INTEGER NOT NULL DEFAULT 0,
            last_activity TEXT, PRIMARY KEY (grid_code, worker)) WITHOUT ROWID""")
    db.execute("""
        CREATE TABLE monitor_field_errors (
            area TEXT NOT NULL, record_type TEXT NOT NULL, field TEXT NOT NULL,
            code TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (area, record_type, field, code)) WITHOUT ROWID""")
    # the figures follow every change, whichever code path makes it; a grid without
    # any activity is listed too, with zeros (the first thing a supervisor looks for)
    db.execute(f"""
        CREATE TRIGGER monitor_grid_insert AFTER INSERT ON grids BEGIN
          INSERT INTO monitor_areas (area) VALUES {_area_rows("NEW.code")}
            ON CONFLICT DO NOTHING;
        END""")
    states = ", ".join(f"{c} = {c} + (NEW.state = '{c}') - (OLD.state = '{c}')"
                       for c in _STATE_COLUMNS)
    db.execute(f"""
        CREATE TRIGGER monitor_submission_insert AFTER INSERT ON submissions BEGIN
          INSERT INTO monitor_areas (area, submitted, pending, last_activity)
            VALUES {_area_rows("NEW.grid_code", "1", "NEW.state = 'pending'",
                               "NEW.received_at")}
            ON CONFLICT (area) DO UPDATE SET submitted = submitted + 1,
              pending = pending + (NEW.state = 'pending'),
              last_activity = max(coalesce(last_activity, ''), NEW.received_at);
          INSERT INTO monitor_workers (grid_code, worker, submitted, last_activity)
            VALUES (NEW.grid_code, NEW.worker, 1, NEW.received_at)
            ON CONFLICT DO UPDATE SET submitted = submitted + 1,
              last_activity = max(coalesce(last_activity, ''), NEW.received_at);
        END""")
    db.execute(f"""
        CREATE TRIGGER monitor_submission_review AFTER UPDATE OF state ON submissions
        WHEN NEW.state != OLD.state BEGIN
          UPDATE monitor_areas SET {states},
            reviewed = reviewed + ({_RESOLVED.format(s="NEW")}
                                   AND OLD.state IN ('pending', 'conflict')),
            last_activity = max(coalesce(last_activity, ''), coalesce(NEW.review_at, ''))
          WHERE area IN ({_area_list("NEW.grid_code")});
        END""")
    db.execute(f"""
        CREATE TRIGGER monitor_review_time AFTER UPDATE OF state ON submissions
        WHEN {_RESOLVED.format(s="NEW")} AND OLD.state IN ('pending', 'conflict') BEGIN
          INSERT INTO monitor_review_times (area, seconds, count)
            SELECT area.column1, review.seconds, 1
            FROM (SELECT {_REVIEW_SECONDS.format(s="NEW")} AS seconds) review,
                 (VALUES {_area_rows("NEW.grid_code")}) area WHERE 1
            ON CONFLICT DO UPDATE SET count = count + 1;
        END""")
    db.execute(f"""
        CREATE TRIGGER monitor_invalid_attempt AFTER INSERT ON invalid_attempts BEGIN
          INSERT INTO monitor_areas (area, invalid_attempts, last_activity)
            VALUES {_area_rows("NEW.grid_code", "1", "NEW.at")}
            ON CONFLICT (area) DO UPDATE SET invalid_attempts = invalid_attempts + 1,
              last_activity = max(coalesce(last_activity, ''), NEW.at);
          INSERT INTO monitor_workers (grid_code, worker, invalid_attempts, last_activity)
            VALUES (NEW.grid_code, NEW.worker, 1, NEW.at)
            ON CONFLICT DO UPDATE SET invalid_attempts = invalid_attempts + 1,
              last_activity = max(coalesce(last_activity, ''), NEW.at);
          INSERT INTO monitor_field_errors (area, record_type, field, code, count)
            SELECT a.column1, NEW.record_type, json_extract(e.value, '$.field'),
                   json_extract(e.value, '$.code'), 1
            FROM json_each(NEW.errors) e, (VALUES {_area_rows("NEW.grid_code")}) a WHERE 1
            ON CONFLICT DO UPDATE SET count = count + 1;
        END""")
    for event, sign, row in (("INSERT", "+", "NEW"), ("DELETE", "-", "OLD")):
        db.execute(f"""
            CREATE TRIGGER monitor_record_{event.lower()} AFTER {event} ON records
            WHEN NOT {row}.retired BEGIN
              INSERT INTO monitor_records (area, record_type, active)
                VALUES {_area_rows(f"{row}.grid_code", f"{row}.record_type", f"{sign}1")}
                ON CONFLICT DO UPDATE SET active = active {sign} 1;
            END""")
    db.execute(f"""
        CREATE TRIGGER monitor_record_update AFTER UPDATE OF grid_code, retired ON records
        WHEN OLD.grid_code != NEW.grid_code OR OLD.retired != NEW.retired BEGIN
          UPDATE monitor_records SET active = active - 1
            WHERE NOT OLD.retired AND record_type = OLD.record_type
              AND area IN ({_area_list("OLD.grid_code")});
          INSERT INTO monitor_records (area, record_type, active)
            SELECT area.column1, NEW.record_type, 1
            FROM (VALUES {_area_rows("NEW.grid_code")}) area WHERE NOT NEW.retired
            ON CONFLICT DO UPDATE SET active = active + 1;
        END""")
    recount_monitor(db)


def recount_monitor(db):
    """Recompute every monitoring figure from the submissions, invalid attempts and
    master records: what the triggers keep up to date one change at a time."""
    for table in ("monitor_areas", "monitor_review_times", "monitor_records",
                  "monitor_workers", "monitor_field_errors"):
        db.execute(f"DELETE FROM {table}")
    for n in _LEVELS:
        area = f"substr(grid_code, 1, {n})" if n else "''"
        states = ", ".join(f"sum(state = '{c}')" for c in _STATE_COLUMNS)
        db.execute(f"""
            INSERT INTO monitor_areas (area, submitted, {", ".join(_STATE_COLUMNS)}, reviewed,
                                       last_activity)
            SELECT {area}, count(*), {states}, sum({_RESOLVED.format(s="s")}),
                   max(max(received_at), coalesce(max(review_at), ''))
            FROM submissions s GROUP BY 1""")
        db.execute(f"""
            INSERT INTO monitor_areas (area, invalid_attempts, last_activity)
            SELECT {area}, count(*), max(at) FROM invalid_attempts WHERE 1 GROUP BY 1
            ON CONFLICT (area) DO UPDATE SET invalid_attempts = excluded.invalid_attempts,
              last_activity = max(coalesce(last_activity, ''), excluded.last_activity)""")
        db.execute(f"""
            INSERT INTO monitor_review_times (area, seconds, count)
            SELECT {area}, {_REVIEW_SECONDS.format(s="s")}, count(*) FROM submissions s
            WHERE {_RESOLVED.format(s="s")} GROUP BY 1, 2""")
        db.execute(f"""
            INSERT INTO monitor_records (area, record_type, active)
            SELECT {area}, record_type, count(*) FROM records WHERE NOT retired
            GROUP BY 1, 2""")
        db.execute(f"""
            INSERT INTO monitor_field_errors (area, record_type, field, code, count)
            SELECT {area}, record_type, json_extract(e.value, '$.field'),
                   json_extract(e.value, '$.code'), count(*)
            FROM invalid_attempts, json_each(invalid_attempts.errors) e GROUP BY 1, 2, 3, 4""")
    for n in _LEVELS:
        db.execute(f"INSERT INTO monitor_areas (area) SELECT DISTINCT"
                   f" {f'substr(code, 1, {n})' if n else repr('')} FROM grids WHERE 1"
                   f" ON CONFLICT DO NOTHING")
    db.execute("""
        INSERT INTO monitor_workers (grid_code, worker, submitted, last_activity)
        SELECT grid_code, worker, count(*), max(received_at) FROM submissions GROUP BY 1, 2""")
    db.execute("""
        INSERT INTO monitor_workers (grid_code, worker, invalid_attempts, last_activity)
        SELECT grid_code, worker, count(*), max(at) FROM invalid_attempts WHERE 1 GROUP BY 1, 2
        ON CONFLICT DO UPDATE SET invalid_attempts = excluded.invalid_attempts,
          last_activity = max(coalesce(last_activity, ''), excluded.last_activity)""")


def _m4_submission_figures_per_batch(db):
    # insert_submissions adds a batch's figures at once (see there)
    db.execute("DROP TRIGGER monitor_submission_insert")


MIGRATIONS = [
    (1, "accounts, grids, submissions, photos, audit", _m1_accounts_grids_submissions_audit),
    (2, "login attempts in flight", _m2_login_attempts_in_flight),
    (3, "master records, history, monitoring figures, releases",
     _m3_master_records_monitor_releases),
    (4, "submission figures added per batch", _m4_submission_figures_per_batch),
]


def schema_version(db) -> int:
    if not db["schema_migrations"].exists():
        return 0
    return db.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]


def migrate(db, now: str) -> list:
    """Apply the migrations this database lacks; returns their numbers."""
    applied = []
    with write(db):  # concurrent starters queue here; the second finds nothing to do
        if not db["schema_migrations"].exists():
            db["schema_migrations"].create({"version": int, "name": str, "applied_at": str},
                                           pk="version")
        current = schema_version(db)
        for version, name, step in MIGRATIONS:
            if version > current:
                step(db)
                db["schema_migrations"].insert({"version": version, "name": name,
                                                "applied_at": now})
                applied.append(version)
    return applied


def is_current(db) -> bool:
    return schema_version(db) == MIGRATIONS[-1][0]


# --- users and tokens ------------------------------------------------------------

def _user(row) -> dict | None:
    if row is None:
        return None
    user = dict(row)
    user["scope"] = json.loads(user["scope"])
    user["unmasked"] = bool(user["unmasked"])
    user["disabled"] = bool(user["disabled"])
    return user


def get_user(db, username: str) -> dict | None:
    rows = db.query("SELECT * FROM users WHERE username = ?", [username])
    return _user(next(rows, None))


def list_users(db) -> list:
    return [_user(row) for row in db.query("SELECT * FROM users ORDER BY username")]


def insert_user(db, username, role, scope, password_hash, unmasked, now):
    db["users"].insert({"username": username, "role": role, "scope": _json(list(scope)),
                        "password_hash": password_hash, "unmasked": int(unmasked),
                        "disabled": 0, "created_at": now, "updated_at": now})


def update_user(db, username, changes: dict, now):
    values = {k: (_json(list(v)) if k == "scope" else int(v) if isinstance(v, bool) else v)
              for k, v in changes.items()}
    db["users"].update(username, {**values, "updated_at": now})


def insert_token(db, token_hash, username, now, expires_at):
    db["tokens"].insert({"token_hash": token_hash, "username": username, "created_at": now,
                         "expires_at": expires_at, "revoked_at": None})


def user_by_token(db, token_hash: str, now: str) -> dict | None:
    rows = db.query("""
        SELECT users.* FROM tokens JOIN users USING (username)
        WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ? AND NOT disabled""",
                    [token_hash, now])
    return _user(next(rows, None))


def revoke_token(db, token_hash: str, now: str) -> int:
    return db.execute("UPDATE tokens SET revoked_at = ? WHERE token_hash = ?"
                      " AND revoked_at IS NULL", [now, token_hash]).rowcount


def revoke_tokens(db, username: str, now: str) -> int:
    return db.execute("UPDATE tokens SET revoked_at = ? WHERE username = ?"
                      " AND revoked_at IS NULL", [now, username]).rowcount


def add_login_attempt(db, keys, now: str, forget_before: str) -> list:
    """Count an attempt in flight for each key (forgetting old ones); the rows' ids."""
    db.execute("DELETE FROM login_failures WHERE at < ?", [forget_before])
    return [db.execute("INSERT INTO login_failures (key, at, pending) VALUES (?, ?, 1)",
                       [key, now]).lastrowid for key in keys]


def fail_login_attempt(db, ids):
    db.conn.executemany("UPDATE login_failures SET pending = 0 WHERE id = ?",
                        [(i,) for i in ids])


def delete_login_attempt(db, ids):
    db.conn.executemany("DELETE FROM login_failures WHERE id = ?", [(i,) for i in ids])


def login_failures(db, key: str, since: str, stale_before: str) -> tuple:
    """``(failures, earliest failure, attempts in flight)`` for ``key`` since then; an
    attempt in flight since before ``stale_before`` never finished: a failure."""
    failed, earliest, in_flight = db.execute(
        "SELECT sum(pending = 0 OR at < :stale),"
        " min(CASE WHEN pending = 0 OR at < :stale THEN at END),"
        " sum(pending = 1 AND at >= :stale)"
        " FROM login_failures WHERE key = :key AND at >= :since",
        {"key": key, "since": since, "stale": stale_before}).fetchone()
    return failed or 0, earliest, in_flight or 0


def throttle_audited(db, key: str, since: str) -> bool:
    """Whether throttling ``key`` was already audited since then (once per window)."""
    return db.execute("SELECT 1 FROM audit WHERE object_type = 'login' AND object_id = ?"
                      " AND action = 'login_throttled' AND at >= ? LIMIT 1",
                      [key, since]).fetchone() is not None


def clear_login_failures(db, key: str):
    """Forget the finished failures of ``key`` (attempts in flight still count)."""
    db.execute("DELETE FROM login_failures WHERE key = ? AND pending = 0", [key])


# --- grids -----------------------------------------------------------------------

def upsert_grids(db, grids: list, now: str) -> tuple:
    """Insert or replace grids ``[(code, name, geometry_json)]``: (added, changed)."""
    added = changed = 0
    for code, name, geometry in grids:
        row = db.execute("SELECT name, geometry FROM grids WHERE code = ?", [code]).fetchone()
        if row is None:
            db["grids"].insert({"code": code, "name": name, "geometry": geometry,
                                "revision": 1, "imported_at": now})
            added += 1
        elif tuple(row) != (name, geometry):
            db.execute("UPDATE grids SET name = ?, geometry = ?, revision = revision + 1,"
                       " imported_at = ? WHERE code = ?", [name, geometry, now, code])
            changed += 1
    return added, changed


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


def list_grids(db, prefixes, under=None, after=None, limit=100) -> list:
    where, params = _list_where("code", prefixes, under or None, (("code > ?", after or None),))
    return list(db.query(f"SELECT code, name, geometry, revision, imported_at FROM grids"
                         f" WHERE {where} ORDER BY code LIMIT ?", params + [limit]))


def get_grid(db, code: str) -> dict | None:
    return next(db.query("SELECT code, name, geometry, revision, imported_at FROM grids"
                         " WHERE code = ?", [code]), None)


def grid_revision(db, code: str) -> int | None:
    row = db.execute("SELECT revision FROM grids WHERE code = ?", [code]).fetchone()
    return row[0] if row else None


def count_grids(db) -> int:
    return db.execute("SELECT count(*) FROM grids").fetchone()[0]


# --- submissions -----------------------------------------------------------------

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


# --- master records --------------------------------------------------------------

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


# --- audit log -------------------------------------------------------------------

def audit(db, entries: list):
    """Append ``(at, actor, action, object_type, object_id, detail)`` entries."""
    db.conn.executemany(
        "INSERT INTO audit (at, actor, action, object_type, object_id, detail)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(at, actor, action, object_type, None if object_id is None else str(object_id),
          None if detail is None else _json(detail))
         for at, actor, action, object_type, object_id, detail in entries])


def list_audit(db, *, actor=None, action=None, object_type=None, object_id=None, since=None,
               before_id=None, limit=100) -> list:
    where, params = "1", []
    for clause, value in (("actor = ?", actor), ("action = ?", action),
                          ("object_type = ?", object_type), ("object_id = ?", object_id),
                          ("at >= ?", since), ("id < ?", before_id)):
        if value is not None:
            where += f" AND {clause}"
            params.append(value)
    rows = []
    for row in db.query(f"SELECT * FROM audit WHERE {where} ORDER BY id DESC LIMIT ?",
                        params + [limit]):
        row["detail"] = None if row["detail"] is None else json.loads(row["detail"])
        rows.append(row)
    return rows


# --- cursors ---------------------------------------------------------------------

def encode_cursor(value) -> str:
    return base64.urlsafe_b64encode(_json(value).encode()).decode().rstrip("=")


def decode_cursor(text: str):
    """The value inside a cursor; ValueError when it is not one of ours."""
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError) as exc:
        raise ValueError("not a cursor") from exc


# --- monitoring ------------------------------------------------------------------

def monitor_areas(db, prefix: str, length: int, after=None, limit=100) -> list:
    """The figures of areas of one level (code ``length``) under ``prefix``."""
    where = "area >= ? AND area < ? AND length(area) = ?"
    params = [prefix, prefix + ":", length]
    if after is not None:
        where += " AND area > ?"
        params.append(after)
    return list(db.query(f"SELECT * FROM monitor_areas WHERE {where} ORDER BY area LIMIT ?",
                         params + [limit]))


def review_times(db, areas) -> dict:
    """area -> [(seconds, count)] in order: the areas' histograms of review times (grids,
    the bulk of them, read as one key range; roll-ups by key)."""
    areas = list(areas)
    if all(len(a) == 15 for a in areas):
        sql, params = ("SELECT area, seconds, count FROM monitor_review_times"
                       " WHERE area >= ? AND area <= ? AND length(area) = 15",
                       [min(areas), max(areas)])
    else:
        sql, params = (f"SELECT area, seconds, count FROM monitor_review_times"
                       f" WHERE area IN ({','.join('?' * len(areas))}) ORDER BY area, seconds",
                       areas)
    out = {}
    for area, seconds, count in db.execute(sql, params):
        out.setdefault(area, []).append((seconds, count))
    return out


def active_records(db, areas) -> dict:
    """area -> record_type -> current (not retired) master records."""
    out = {area: {} for area in areas}
    marks = ",".join("?" * len(out))
    for area, record_type, active in db.execute(
            f"SELECT area, record_type, active FROM monitor_records WHERE area IN ({marks})"
            f" AND active > 0", list(out)):
        out[area][record_type] = active
    return out


def oldest_pending(db, first: str, last: str, length: int) -> dict:
    """area (code ``length``) -> receipt time of its oldest pending submission, for the
    areas from ``first`` to ``last``."""
    return dict(db.execute(
        f"SELECT substr(grid_code, 1, {int(length)}), min(received_at) FROM submissions"
        " WHERE state = 'pending' AND grid_code >= ? AND grid_code < ? GROUP BY 1",
        [first, last + ":"]).fetchall())


def monitor_workers(db, first: str, last: str) -> list:
    return list(db.query("SELECT * FROM monitor_workers WHERE grid_code >= ? AND grid_code <= ?"
                         " ORDER BY grid_code, last_activity DESC", [first, last]))


def grid_names(db, first: str, last: str) -> dict:
    return dict(db.execute("SELECT code, name FROM grids WHERE code >= ? AND code <= ?",
                           [first, last]).fetchall())


def frequent_field_errors(db, areas, record_type=None, limit=50) -> list:
    """The most frequent (record_type, field, code) among invalid attempts in the areas."""
    marks = ",".join("?" * len(areas))
    where, params = f"area IN ({marks})", list(areas)
    if record_type is not None:
        where += " AND record_type = ?"
        params.append(record_type)
    return list(db.query(
        f"SELECT record_type, field, code, sum(count) AS count FROM monitor_field_errors"
        f" WHERE {where} GROUP BY 1, 2, 3 ORDER BY count DESC, 1, 2, 3 LIMIT ?",
        params + [limit]))


# --- releases --------------------------------------------------------------------

def insert_release(db, created_at, created_by, note, file_name) -> int:
    return db.execute("INSERT INTO releases (state, created_at, created_by, note, file)"
                      " VALUES ('building', ?, ?, ?, ?)",
                      [created_at, created_by, note, file_name]).lastrowid


def finish_release(db, release_id, counts, versions, size, sha256):
    db.execute("UPDATE releases SET state = 'ready', counts = ?, standard_versions = ?,"
               " size = ?, sha256 = ? WHERE id = ?",
               [_json(counts), _json(versions), size, sha256, release_id])


def fail_release(db, release_id):
    db.execute("UPDATE releases SET state = 'failed' WHERE id = ?", [release_id])


def building_releases(db) -> list:
    return [dict(row) for row in db.query("SELECT id, file FROM releases"
                                          " WHERE state = 'building'")]


def release_files(db) -> set:
    return {row["file"] for row in db.query("SELECT file FROM releases")}


def _release(row) -> dict:
    release = dict(row)
    for key in ("counts", "standard_versions"):
        release[key] = None if release[key] is None else json.loads(release[key])
    return release


def get_release(db, release_id: int) -> dict | None:
    row = next(db.query("SELECT * FROM releases WHERE id = ?", [release_id]), None)
    return None if row is None else _release(row)


def list_releases(db, before_id=None, limit=50) -> list:
    where, params = "state = 'ready'", []
    if before_id is not None:
        where += " AND id < ?"
        params.append(before_id)
    return [_release(row) for row in db.query(
        f"SELECT * FROM releases WHERE {where} ORDER BY id DESC LIMIT ?", params + [limit])]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_SQL_TYPES = {"integer": "INTEGER", "number": "REAL", "float": "REAL", "boolean": "INTEGER"}
_META = ("key", "grid_code", "version", "created_at", "updated_at")


def write_release_file(db_path, path, tables: dict, column_rows, code_rows, meta) -> dict:
    """Write a release file from one consistent snapshot of the master records.

    ``tables`` maps a record type to its columns (``name``, ``path``, ``type``). The
    file is attached to a connection of its own: the snapshot is read while the
    server goes on writing. Returns the rows per table.
    """
    conn = sqlite3.connect(str(db_path), isolation_level=None, timeout=BUSY_TIMEOUT_S)
    try:
        conn.execute("ATTACH DATABASE ? AS rel", [str(path)])
        conn.execute("PRAGMA rel.journal_mode = OFF")  # a failed build is deleted whole
        conn.execute("PRAGMA rel.synchronous = OFF")  # fsynced once at the end
        conn.execute("BEGIN")
        counts = {}
        for record_type, columns in tables.items():
            table = _ident(record_type)
            definitions = [f"{name} {'INTEGER' if name == 'version' else 'TEXT'} NOT NULL"
                           for name in _META]
            definitions += [f"{_ident(c.name)} {_SQL_TYPES.get(c.type, 'TEXT')}"
                            for c in columns]
            conn.execute(f"CREATE TABLE rel.{table} ({', '.join(definitions)})")
            names = list(_META) + [_ident(c.name) for c in columns]
            values = list(_META) + [f"data {'->' if c.type == 'list' else '->>'}"
                                    f" {_literal(c.path)}" for c in columns]
            conn.execute(f"INSERT INTO rel.{table} ({', '.join(names)})"
                         f" SELECT {', '.join(values)} FROM main.records"
                         f" WHERE record_type = ? AND NOT retired ORDER BY key", [record_type])
            conn.execute(f"CREATE INDEX rel.{_ident(record_type + '_grid')}"
                         f" ON {table}(grid_code)")
            counts[record_type] = conn.execute(f"SELECT count(*) FROM rel.{table}").fetchone()[0]
        keys = ("record_type", "position", "column", "field", "type", "label_zh", "label_en",
                "description", "standard", "code_table", "sensitivity", "mask", "free_text")
        conn.execute(f"CREATE TABLE rel._columns ({', '.join(_ident(k) for k in keys)})")
        conn.executemany(f"INSERT INTO rel._columns VALUES ({', '.join('?' * len(keys))})",
                         [[row[k] for k in keys] for row in column_rows])
        conn.execute("CREATE TABLE rel._codes (code_table TEXT, standard TEXT, code TEXT,"
                     " label TEXT, PRIMARY KEY (code_table, code)) WITHOUT ROWID")
        conn.executemany("INSERT INTO rel._codes VALUES (?, ?, ?, ?)",
                         [(r["code_table"], r["standard"], r["code"], r["label"])
                          for r in code_rows])
        conn.execute("CREATE TABLE rel._release (key TEXT PRIMARY KEY, value TEXT)")
        conn.executemany("INSERT INTO rel._release VALUES (?, ?)",
                         [(k, _json(v)) for k, v in {**meta, "counts": counts}.items()])
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE rel")
    finally:
        conn.close()
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())
    return counts


def _open_release(path) -> sqlite3.Connection:
    """A release file, read-only (it never changes once written)."""
    uri = "file:" + urllib.request.pathname2url(str(pathlib.Path(path).resolve()))
    conn = sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    return conn


def release_dictionary(path, record_type=None) -> tuple:
    conn = _open_release(path)
    try:
        where, params = ("WHERE record_type = ?", [record_type]) if record_type else ("", [])
        columns = [dict(r) for r in conn.execute(
            f"SELECT * FROM _columns {where} ORDER BY record_type, position", params)]
        codes = [dict(r) for r in conn.execute("SELECT * FROM _codes ORDER BY code_table, code")]
    finally:
        conn.close()
    return columns, codes


# masks as SQL expressions, the same as access.mask (a differential test holds them equal)
_STARS = "'" + "*" * 64 + "'"
_MASKS = {  # the common lengths first: a constant run of stars is cheaper than printf
    "id_number": "CASE WHEN length({v}) = 18 THEN substr({v}, 1, 6) || '********'"
                 " || substr({v}, -4) WHEN length({v}) > 10 THEN substr({v}, 1, 6)"
                 " || printf('%.*c', length({v}) - 10, '*') || substr({v}, -4)"
                 " ELSE printf('%.*c', max(length({v}), 1), '*') END",
    "phone": "CASE WHEN length({v}) = 11 THEN substr({v}, 1, 3) || '****' || substr({v}, -4)"
             " WHEN length({v}) > 7 THEN substr({v}, 1, 3)"
             " || printf('%.*c', length({v}) - 7, '*') || substr({v}, -4)"
             " ELSE printf('%.*c', max(length({v}), 1), '*') END",
    "name": "CASE WHEN length({v}) BETWEEN 1 AND 65 THEN substr({v}, 1, 1)"
            f" || substr({_STARS}, 1, max(length({{v}}) - 1, 1))"
            " WHEN length({v}) > 0 THEN substr({v}, 1, 1)"
            " || printf('%.*c', length({v}) - 1, '*') ELSE '*' END",
    "other": f"CASE WHEN length({{v}}) <= 64 THEN substr({_STARS}, 1, max(length({{v}}), 1))"
             " ELSE printf('%.*c', length({v}), '*') END",
}
# a spreadsheet runs a cell that starts like a formula: such text gets a leading '
_NEUTRALISE = ("CASE WHEN substr({v}, 1, 1) IN ('=', '+', '-', '@', char(9), char(13))"
               " THEN '''' || {v} ELSE {v} END")
_CSV = ("CASE WHEN {v} IS NULL THEN '' WHEN typeof({v}) != 'text' THEN {v}"
        " WHEN {v} GLOB '*[,\"' || char(10) || char(13) || ']*'"
        " THEN '\"' || replace({v}, '\"', '\"\"') || '\"' ELSE {v} END")


def mask_sql(kind: str, value: str) -> str:
    return f"(CASE WHEN {value} IS NULL THEN NULL ELSE {_MASKS[kind].format(v=value)} END)"


_LIST_FAST = ("CASE WHEN {v} IS NULL THEN NULL WHEN {v} GLOB '[[]\"*\"]' AND instr({v}, '\\') = 0"
              " THEN replace(substr({v}, 3, length({v}) - 4), '\",\"', ';')"
              " WHEN {v} = '[]' THEN '' ELSE (SELECT group_concat(value, ';')"
              " FROM json_each({v})) END")


def _cell_sql(column, kind, mask, code_table, free_text, fmt) -> str:
    """One exported cell as SQL. Only free text (and labels, lists, masks) can hold a
    comma, a quote, a line break or a leading formula character: the other columns
    (codes, identifiers, dates, numbers, checked by their standards) go out as they are."""
    value = _ident(column)
    if code_table and kind == "list":
        value = (f"(SELECT group_concat(coalesce(c.label, j.value), ';') FROM json_each({value})"
                 f" j LEFT JOIN _codes c ON c.code_table = {_literal(code_table)}"
                 f" AND c.code = j.value)")
    elif code_table:
        value = (f"(SELECT label FROM _codes WHERE code_table = {_literal(code_table)}"
                 f" AND code = {value})")
    elif kind == "list":
        value = f"json({value})" if fmt == "json" else "(" + _LIST_FAST.format(v=value) + ")"
    if mask:
        value = mask_sql(mask, value)
    if fmt == "json" or not (free_text or code_table or kind == "list"):
        return value
    if value == _ident(column):
        return _safe_cell(value, fmt)
    # computed once, then checked: the checks name their value several times
    return f"(SELECT {_safe_cell('x', fmt)} FROM (SELECT {value} AS x))"


def _safe_cell(value: str, fmt: str) -> str:
    value = "(" + _NEUTRALISE.format(v=value) + ")"
    if fmt == "csv":
        value = "(" + _CSV.format(v=value) + ")"
    return value


def csv_quote(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def release_rows(path, record_type, plan, prefixes, fmt, window_rows):
    """A release table, a window of ``window_rows`` row ids at a time: the window's
    CSV lines or JSON objects as one UTF-8 ``bytes`` (SQLite renders and joins them:
    no Python object per row), or a list of cell tuples (``fmt="cells"``). Each cell
    is masked, labelled and neutralised in SQL as ``plan`` says (``(name, column,
    type, mask, code_table, free_text)`` per exported column)."""
    cells = [_cell_sql(column, kind, mask, code_table, free_text, fmt)
             for _, column, kind, mask, code_table, free_text in plan]
    if fmt == "csv":  # one printf a line: SQLite builds it in one piece (NULL prints as "")
        select = " || ',' || ".join(
            f"printf('{','.join(['%s'] * len(part))}', {', '.join(part)})"
            for part in (cells[i:i + 100] for i in range(0, len(cells), 100)))
    elif fmt == "json":
        select = "json_object(" + ", ".join(
            f"{_literal(name)}, {cell}" for (name, *_), cell in zip(plan, cells)) + ")"
    else:
        select = ", ".join(cells)
    where, params = _scope_sql("grid_code", prefixes)
    table = _ident(record_type)
    sql = (f"SELECT {select} AS line FROM {table} WHERE {where} AND rowid > ? AND rowid <= ?"
           f" ORDER BY rowid")
    if fmt != "cells":  # a window's lines joined by SQLite: one step, one string
        separator = "char(13, 10)" if fmt == "csv" else "',' || char(10)"
        sql = f"SELECT group_concat(line, {separator}) FROM ({sql})"
    reader = _open_release(path)
    reader.row_factory = None
    if fmt != "cells":
        reader.text_factory = bytes  # UTF-8 as SQLite holds it: nothing to decode or encode
    try:
        last = reader.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()[0]
        for start in range(0, last, window_rows):
            rows = reader.execute(sql, [*params, start, start + window_rows]).fetchall()
            if fmt == "cells":
                yield rows
            elif rows and rows[0][0] is not None:
                yield rows[0][0]
    finally:
        reader.close()
