"""Monitor the process per grid, rolled up per community, street, district and city.

Every figure is kept up to date by the database as submissions arrive and are
reviewed (see ``store``'s migration 3), so a page of areas costs a few indexed
lookups however large the city is. Pure domain: no Flask, no SQL.
"""
from __future__ import annotations

import datetime

from . import access, clock, store

LEVELS = {"city": 0, "district": 6, "street": 9, "community": 12, "grid": 15}
COUNTS = ("submitted", "pending", "confirmed", "rejected", "returned", "conflict",
          "awaiting_move", "invalid_attempts")


class NotFound(Exception):
    """The prefix is outside the caller's scope (answered as if it did not exist)."""


class BadLevel(Exception):
    pass


def _roots(user: access.User, under: str | None) -> list:
    """The prefixes to report under: ``under`` when the caller may see all of it,
    else the caller's scope ("" is the whole city)."""
    if under is not None:
        if not access.in_scope(user, under):
            raise NotFound(under)
        return [under]
    scope = access.prefixes(user)
    if scope is None:
        return [""]
    return sorted(p for p in scope  # without prefixes another one covers
                  if not any(p != q and p.startswith(q) for q in scope))


def roots(user: access.User) -> list:
    """The prefixes the caller's figures are reported under ("" is the whole city)."""
    return _roots(user, None)


def region_namer(standards):
    """``region_name`` for ``areas``: a district's GB/T 2260 name."""
    codes = standards.code_tables["gb_t_2260"].codes

    def region_name(code: str):
        entry = codes.get(code)
        return entry.label if entry else None

    return region_name


def areas(db, user: access.User, *, under=None, level="grid", limit=100, after=None,
          region_name=None) -> list:
    """Figures per area of ``level`` under ``under`` (or the caller's scope), in code
    order, ``limit`` of them after the code ``after``. Names: the grids file's; for a
    district it does not name, ``region_name(code)`` (GB/T 2260's) if given."""
    length = LEVELS[level]
    rows = []
    for root in _roots(user, under):
        if length < len(root):
            raise BadLevel(level)
        rows += store.monitor_areas(db, root, length, after, limit - len(rows))
        if len(rows) >= limit:
            break
    if not rows:
        return []
    codes = [row["area"] for row in rows]
    first, last = codes[0], codes[-1]
    records = store.active_records(db, codes)
    times = store.review_times(db, codes)
    oldest = store.oldest_pending(db, first, last, length)
    names = store.area_names(db, first, last, length) if length else {}
    if level == "district" and region_name is not None:
        names = {code: names.get(code) or region_name(code) for code in codes}
    workers = {}
    if level == "grid":
        for row in store.monitor_workers(db, first, last):
            workers.setdefault(row.pop("grid_code"), []).append(row)
    return [{
        "code": row["area"], "level": level, "name": names.get(row["area"]) or None,
        **{name: row[name] for name in COUNTS},
        "oldest_pending": oldest.get(row["area"]),
        "median_review_seconds": median(times.get(row["area"], [])),
        "last_activity": row["last_activity"],
        "records": records[row["area"]],
        "workers": workers.get(row["area"], []) if level == "grid" else None,
    } for row in rows]


def median(histogram: list) -> float | None:
    """The median of a histogram ``[(value, count)]`` in value order."""
    total = sum(count for _, count in histogram)
    if not total:
        return None
    wanted = sorted({(total - 1) // 2, total // 2})  # the middle one, or the middle two
    middle, seen = [], 0
    for value, count in histogram:
        middle += [value for position in wanted if seen <= position < seen + count]
        seen += count
        if seen > wanted[-1]:
            break
    return sum(middle) / len(middle)


def field_errors(db, standards, user: access.User, *, record_type=None, under=None,
                 limit=50) -> list:
    """The most frequent validation errors per field: what workers need training on."""
    rows = store.frequent_field_errors(db, _roots(user, under), record_type, limit)
    for row in rows:
        try:
            row["message"] = standards.effective(row["record_type"]).error(
                row["field"], row["code"]).message
        except KeyError:  # a record type no longer defined
            row["message"] = ""
    return rows


def per_day(db, user: access.User, *, under=None, days=30, today=None) -> list:
    """``(day, {state: count})`` for each of the last ``days`` days (today included):
    the submissions received that day under ``under`` (or the caller's scope), by the
    state they are in now."""
    today = today or clock.now().date()
    first = today - datetime.timedelta(days=days - 1)
    counts = {}
    for day, state, count in store.submissions_per_day(db, _roots(user, under),
                                                       first.isoformat()):
        counts.setdefault(day, {})[state] = count
    return [((first + datetime.timedelta(days=n)).isoformat(),
             counts.get((first + datetime.timedelta(days=n)).isoformat(), {}))
            for n in range(days)]


def backlog(db, user: access.User, *, under=None, limit=5000) -> dict:
    """grid code -> {"pending", "oldest_pending"} for the grids under ``under`` (or the
    caller's scope): what a map of them is coloured by, without the rest of a grid
    page's figures."""
    out = {}
    for root in _roots(user, under):
        for row in store.monitor_areas(db, root, LEVELS["grid"], None, limit - len(out)):
            out[row["area"]] = {"pending": row["pending"], "oldest_pending": None}
        for code, at in store.oldest_pending(db, root, root, LEVELS["grid"]).items():
            if code in out:
                out[code]["oldest_pending"] = at
    return out
