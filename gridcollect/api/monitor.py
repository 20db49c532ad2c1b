"""Monitor: the process per grid, rolled up per community, street, district and city."""
from __future__ import annotations

from flask.views import MethodView

from .. import monitor, store
from ..grids import is_prefix
from . import ApiError, Blueprint, authenticated, current_user, db, runtime
from .schemas import AreaList, AreaListArgs, FieldErrorArgs, FieldErrorList

blp = Blueprint("monitor", __name__, url_prefix="/api/v1",
                description="Monitor: figures per grid and roll-ups (supervisors)")


def _after(args):
    if "cursor" not in args:
        return None
    try:
        value = store.decode_cursor(args["cursor"])
    except ValueError:
        raise ApiError("bad_cursor") from None
    if not (type(value) is str and (value == "" or is_prefix(value))):
        raise ApiError("bad_cursor")
    return value


@blp.route("/monitor/grids")
class Areas(MethodView):
    @authenticated("monitor")
    @blp.arguments(AreaListArgs, location="query")
    @blp.response(200, AreaList)
    def get(self, args):
        """Per grid (or per community, street, district: ``?level=``) under a prefix:
        submissions by state, invalid attempts, oldest pending, median review time,
        last activity (per worker for grids) and current master records."""
        limit = args["limit"]
        try:
            rows = monitor.areas(db(), current_user(), under=args.get("under"),
                                 level=args["level"], limit=limit + 1, after=_after(args))
        except monitor.NotFound:
            raise ApiError("not_found") from None
        except monitor.BadLevel:
            raise ApiError("bad_query", detail="level is coarser than the prefix") from None
        more = len(rows) > limit
        rows = rows[:limit]
        return {"items": rows, "next": store.encode_cursor(rows[-1]["code"]) if more else None}


@blp.route("/monitor/fields")
class FieldErrors(MethodView):
    @authenticated("monitor")
    @blp.arguments(FieldErrorArgs, location="query")
    @blp.response(200, FieldErrorList)
    def get(self, args):
        """The most frequent validation errors per field, most frequent first: what
        workers need training on."""
        try:
            rows = monitor.field_errors(db(), runtime().standards, current_user(),
                                        record_type=args.get("record_type"),
                                        under=args.get("under"), limit=args["limit"])
        except monitor.NotFound:
            raise ApiError("not_found") from None
        return {"items": rows}
