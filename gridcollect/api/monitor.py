"""Monitor: the process per grid, rolled up per community, street, district and city."""
from __future__ import annotations

from flask.views import MethodView

from .. import monitor
from . import ApiError, Blueprint, authenticated, current_user, cursor_value, db, page, runtime
from .schemas import AreaList, AreaListArgs, FieldErrorArgs, FieldErrorList

blp = Blueprint("monitor", __name__, url_prefix="/api/v1",
                description="Monitor: figures per grid and roll-ups (supervisors)")


@blp.route("/monitor/grids")
class Areas(MethodView):
    @authenticated("monitor")
    @blp.arguments(AreaListArgs, location="query")
    @blp.response(200, AreaList)
    def get(self, args):
        """Per grid (or per community, street, district: ``?level=``) under a prefix:
        submissions by state, invalid attempts, oldest pending, median review time,
        last activity (per worker for grids) and current master records."""
        try:
            rows = monitor.areas(db(), current_user(), under=args.get("under"),
                                 level=args["level"], limit=args["limit"] + 1,
                                 after=cursor_value(args, "area"),
                                 region_name=monitor.region_namer(runtime().standards))
        except monitor.NotFound:
            raise ApiError("not_found") from None
        except monitor.BadLevel:
            raise ApiError("bad_query", detail="level is coarser than the prefix") from None
        return page(rows, args["limit"], lambda row: row["code"])


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
