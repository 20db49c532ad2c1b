"""Grid cells and their geometry."""
from __future__ import annotations

from .base import _list_where


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


def upsert_area_names(db, names: dict, now: str) -> int:
    """Name districts, streets, communities ``{code: name}``; how many names changed."""
    changed = 0
    for code, name in names.items():
        changed += db.execute(
            "INSERT INTO areas (code, name, imported_at) VALUES (?, ?, ?)"
            " ON CONFLICT (code) DO UPDATE SET name = excluded.name,"
            " imported_at = excluded.imported_at WHERE name != excluded.name",
            [code, name, now]).rowcount
    return changed


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
