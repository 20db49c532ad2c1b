"""The append-only audit log."""
from __future__ import annotations

import json

from .base import _json


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
