"""Monitor: district → street → community → grid, a map coloured by backlog, charts."""
from __future__ import annotations

import flask

from .. import clock, monitor, workflow
from ..grids import is_prefix
from . import PageError, blp, db, page, pictures, render, runtime, user

NEXT_LEVEL = {0: "district", 6: "street", 9: "community", 12: "grid"}
LEVEL_OF = {0: "city", 6: "district", 9: "street", 12: "community", 15: "grid"}
MAP_LIMIT = 5000  # grids drawn at once (a city of 2,200 fits)
ROWS = 500


def _under(text) -> str | None:
    """The area asked for; None when the caller's whole scope is meant."""
    if text in (None, ""):
        return None
    if not is_prefix(text):
        raise PageError(404)
    return text


@blp.route("/monitor")
@page("monitor")
def monitor_page():
    args = flask.request.args
    under = _under(args.get("under"))
    roots = monitor.roots(user())
    if under is None and len(roots) == 1 and roots[0]:
        under = roots[0]
    colour_by = "oldest" if args.get("colour") == "oldest" else "backlog"
    length = len(under) if under else 0
    names = monitor.region_namer(runtime().standards)
    try:
        here = monitor.areas(db(), user(), under=under, level=LEVEL_OF[length], limit=1,
                             region_name=names)[:1] if under else []
        level = NEXT_LEVEL.get(length) or (
            LEVEL_OF[max(len(r) for r in roots)] if under is None else None)
        rows = []
        if level is not None:
            rows = monitor.areas(db(), user(), under=under, level=level, limit=ROWS,
                                 region_name=names)
        elif here:
            rows = here  # a grid: its own figures, with its workers
        grids = workflow.list_grids(db(), user(), under=under, limit=MAP_LIMIT)
        colours = monitor.backlog(db(), user(), under=under, limit=MAP_LIMIT)
        days = monitor.per_day(db(), user(), under=under, days=30)
        field_errors = monitor.field_errors(db(), runtime().standards, user(), under=under,
                                            limit=10)
    except monitor.NotFound:
        raise PageError(404) from None
    shape = pictures.grid_map(grids, colours, colour_by, clock.now())
    trail = [{"code": code, "level": LEVEL_OF[len(code)]}
             for code in (under[:n] for n in (6, 9, 12, 15) if under and n <= len(under))
             if any(code.startswith(r) for r in roots)]
    return render("console/monitor.html", under=under, here=here[0] if here else None,
                  level=level, rows=rows, map=shape, colour_by=colour_by,
                  legend=pictures.legend(colour_by), days=pictures.day_bars(days),
                  day_list=days, errors=pictures.share_bars(field_errors),
                  state_colours=pictures.STATE_COLOURS, trail=trail,
                  level_of=LEVEL_OF, now=clock.now())
