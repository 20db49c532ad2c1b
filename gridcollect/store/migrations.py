"""The numbered migrations, and the monitoring figures their triggers keep
(``recount_monitor`` recomputes them from scratch)."""
from __future__ import annotations

from .base import write


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


# the states counted per area: migration 3 made the first five columns, 5 the last
_M3_STATES = ("pending", "confirmed", "rejected", "returned", "conflict")
STATE_COLUMNS = _M3_STATES + ("awaiting_move",)
# a review from one of these to a resolved state is counted and timed
_M3_UNSETTLED = ("pending", "conflict")
_UNSETTLED = _M3_UNSETTLED + ("awaiting_move",)
_LEVELS = (0, 6, 9, 12, 15)  # city, district, street, community, grid
# review time: from receipt to the review that settled it (a conflict is not settled)
_RESOLVED = "{s}.state IN ('confirmed', 'rejected', 'returned')"
# kept as a histogram to three significant figures (60, 185, 1230, 0.004 s): a median
# as exact as anyone reads it, and a review adds to a handful of counters, not rows
_REVIEW_SECONDS = ("CAST(printf('%.3g', (julianday({s}.review_at) - julianday({s}.received_at))"
                   " * 86400) AS REAL)")


def _review_triggers(db, states, unsettled):
    """The triggers that follow a review: the figures per state, and the review time of
    a submission that leaves ``unsettled`` for a resolved state."""
    unsettled = ", ".join(f"'{s}'" for s in unsettled)
    states = ", ".join(f"{c} = {c} + (NEW.state = '{c}') - (OLD.state = '{c}')" for c in states)
    db.execute(f"""
        CREATE TRIGGER monitor_submission_review AFTER UPDATE OF state ON submissions
        WHEN NEW.state != OLD.state BEGIN
          UPDATE monitor_areas SET {states},
            reviewed = reviewed + ({_RESOLVED.format(s="NEW")}
                                   AND OLD.state IN ({unsettled})),
            last_activity = max(coalesce(last_activity, ''), coalesce(NEW.review_at, ''))
          WHERE area IN ({_area_list("NEW.grid_code")});
        END""")
    db.execute(f"""
        CREATE TRIGGER monitor_review_time AFTER UPDATE OF state ON submissions
        WHEN {_RESOLVED.format(s="NEW")} AND OLD.state IN ({unsettled}) BEGIN
          INSERT INTO monitor_review_times (area, seconds, count)
            SELECT area.column1, review.seconds, 1
            FROM (SELECT {_REVIEW_SECONDS.format(s="NEW")} AS seconds) review,
                 (VALUES {_area_rows("NEW.grid_code")}) area WHERE 1
            ON CONFLICT DO UPDATE SET count = count + 1;
        END""")


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
            {", ".join(f"{c} INTEGER NOT NULL DEFAULT 0" for c in _M3_STATES)},
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
    _review_triggers(db, _M3_STATES, _M3_UNSETTLED)
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
    recount_monitor(db, _M3_STATES)


def recount_monitor(db, states=STATE_COLUMNS):
    """Recompute every monitoring figure from the submissions, invalid attempts and
    master records: what the triggers keep up to date one change at a time (``states``:
    the state columns the schema has)."""
    for table in ("monitor_areas", "monitor_review_times", "monitor_records",
                  "monitor_workers", "monitor_field_errors"):
        db.execute(f"DELETE FROM {table}")
    for n in _LEVELS:
        area = f"substr(grid_code, 1, {n})" if n else "''"
        counts = ", ".join(f"sum(state = '{c}')" for c in states)
        db.execute(f"""
            INSERT INTO monitor_areas (area, submitted, {", ".join(states)}, reviewed,
                                       last_activity)
            SELECT {area}, count(*), {counts}, sum({_RESOLVED.format(s="s")}),
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


def _m5_moves_between_grids(db):
    # an upsert that would move a record out of a grid its reviewer does not oversee
    # waits (state awaiting_move) for the agreement of the grid the record is in
    db.execute("""
        CREATE TABLE moves (
            submission_id INTEGER PRIMARY KEY REFERENCES submissions(id),
            record_type TEXT NOT NULL, key TEXT NOT NULL,
            from_grid TEXT NOT NULL,  -- where the record is: followed while undecided
            requested_by TEXT NOT NULL, requested_at TEXT NOT NULL,
            state TEXT NOT NULL,  -- open, accepted, refused or withdrawn
            decided_by TEXT, decided_at TEXT, note TEXT)""")
    db.execute("CREATE INDEX moves_open ON moves(from_grid, submission_id)"
               " WHERE state = 'open'")
    db.execute("CREATE INDEX moves_record ON moves(record_type, key) WHERE state = 'open'")
    db.execute("ALTER TABLE monitor_areas ADD COLUMN awaiting_move INTEGER NOT NULL DEFAULT 0")
    db.execute("DROP TRIGGER monitor_submission_review")
    db.execute("DROP TRIGGER monitor_review_time")
    _review_triggers(db, STATE_COLUMNS, _UNSETTLED)
    # an area a record left (a move, a retirement) keeps no row of zero: the figures
    # stay row for row what a recount makes of them
    db.execute("DROP TRIGGER monitor_record_update")
    db.execute(f"""
        CREATE TRIGGER monitor_record_update AFTER UPDATE OF grid_code, retired ON records
        WHEN OLD.grid_code != NEW.grid_code OR OLD.retired != NEW.retired BEGIN
          UPDATE monitor_records SET active = active - 1
            WHERE NOT OLD.retired AND record_type = OLD.record_type
              AND area IN ({_area_list("OLD.grid_code")});
          DELETE FROM monitor_records WHERE active = 0 AND record_type = OLD.record_type
              AND area IN ({_area_list("OLD.grid_code")});
          INSERT INTO monitor_records (area, record_type, active)
            SELECT area.column1, NEW.record_type, 1
            FROM (VALUES {_area_rows("NEW.grid_code")}) area WHERE NOT NEW.retired
            ON CONFLICT DO UPDATE SET active = active + 1;
        END""")
    db.execute("DELETE FROM monitor_records WHERE active = 0")


def _m6_area_names(db):
    # the names of districts, streets and communities, from the grids file
    db.execute("CREATE TABLE areas (code TEXT PRIMARY KEY, name TEXT NOT NULL,"
               " imported_at TEXT NOT NULL) WITHOUT ROWID")


def _m7_token_kinds(db):
    # a token is a console or API session, or an OpenRosa key (a URL for ODK Collect)
    db.execute("ALTER TABLE tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'session'")


MIGRATIONS = [
    (1, "accounts, grids, submissions, photos, audit", _m1_accounts_grids_submissions_audit),
    (2, "login attempts in flight", _m2_login_attempts_in_flight),
    (3, "master records, history, monitoring figures, releases",
     _m3_master_records_monitor_releases),
    (4, "submission figures added per batch", _m4_submission_figures_per_batch),
    (5, "moves between grids wait for the agreement of the grid a record is in",
     _m5_moves_between_grids),
    (6, "names of districts, streets and communities", _m6_area_names),
    (7, "kinds of tokens: sessions and OpenRosa keys", _m7_token_kinds),
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
