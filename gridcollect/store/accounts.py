"""Users, tokens and login attempts."""
from __future__ import annotations

import json

from .base import _json


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


def insert_token(db, token_hash, username, now, expires_at, kind="session"):
    db["tokens"].insert({"token_hash": token_hash, "username": username, "created_at": now,
                         "expires_at": expires_at, "revoked_at": None, "kind": kind})


def list_tokens(db, username: str, kind: str) -> list:
    return list(db.query("SELECT * FROM tokens WHERE username = ? AND kind = ?"
                         " ORDER BY created_at", [username, kind]))


def revoke_token_by_prefix(db, username: str, kind: str, prefix: str, now: str) -> int:
    """Revoke the user's token of that kind whose hash starts with ``prefix`` (hex)."""
    return db.execute("UPDATE tokens SET revoked_at = ? WHERE username = ? AND kind = ?"
                      " AND token_hash >= ? AND token_hash < ? AND revoked_at IS NULL",
                      [now, username, kind, prefix, prefix + "g"]).rowcount


def user_by_token(db, token_hash: str, now: str, kind: str = "session") -> dict | None:
    rows = db.query("""
        SELECT users.* FROM tokens JOIN users USING (username)
        WHERE token_hash = ? AND kind = ? AND revoked_at IS NULL AND expires_at > ?
          AND NOT disabled""", [token_hash, kind, now])
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


def clear_login_failures(db, key: str) -> int:
    """Forget the finished failures of ``key`` (attempts in flight still count)."""
    return db.execute("DELETE FROM login_failures WHERE key = ? AND pending = 0",
                      [key]).rowcount
