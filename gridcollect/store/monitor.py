"""Reading the monitoring figures (kept by the triggers of ``migrations``)."""
from __future__ import annotations

from .base import _scope_sql
from .migrations import STATE_COLUMNS


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


def area_names(db, first: str, last: str, length: int) -> dict:
    """The names of the areas (codes of ``length``) from ``first`` to ``last``."""
    table = "grids" if length == 15 else "areas"
    return dict(db.execute(f"SELECT code, name FROM {table} WHERE code >= ? AND code <= ?"
                           " AND length(code) = ?", [first, last, length]).fetchall())


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


def submissions_per_day(db, prefixes, since: str) -> list:
    """``(day, state, count)`` of the submissions received since ``since`` in the grids
    under ``prefixes``. For each state and grid, one seek into the covering index
    (state, grid_code, received_at) reads only the days asked for: the loops are
    forced in that order (CROSS JOIN), and ``+g.code`` keeps SQLite from turning the
    grid range into a range over the whole state instead."""
    scope, params = _scope_sql("g.code", prefixes)
    states = ", ".join(f"('{state}')" for state in STATE_COLUMNS)
    return sorted(db.execute(
        f"SELECT substr(s.received_at, 1, 10), st.column1, count(*)"
        f" FROM (VALUES {states}) st CROSS JOIN grids g CROSS JOIN submissions s"
        f" ON s.state = st.column1 AND s.grid_code = +g.code AND s.received_at >= ?"
        f" WHERE {scope} GROUP BY 1, 2", [since, *params]).fetchall())
