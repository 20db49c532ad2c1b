"""Merged master records: current values with their version, history and provenance."""
from __future__ import annotations

import flask
from flask.views import MethodView

from .. import clock, records
from ..standards import RECORD_TYPES
from . import ApiError, Blueprint, authenticated, current_user, cursor_value, db, page, runtime
from .schemas import RecordDetail, RecordList, RecordListArgs

blp = Blueprint("records", __name__, url_prefix="/api/v1",
                description="Merged master records, masked per role")

_KNOWN_ARGS = set(RecordListArgs().fields)


def _record_type(record_type):
    if record_type not in RECORD_TYPES:
        raise ApiError("not_found")
    return record_type


@blp.route("/records/<record_type>")
class Records(MethodView):
    @authenticated("read_records")
    @blp.arguments(RecordListArgs, location="query")
    @blp.response(200, RecordList)
    @blp.doc(parameters=[{"in": "query", "name": "field", "required": False,
                          "schema": {"type": "string"}, "description":
                          "any other parameter names a field and a value to search for, "
                          "e.g. ?usage=2 or ?special_groups=独居老人 (repeat for any of "
                          "several values); masked fields cannot be searched"}])
    def get(self, args, record_type):
        """Current master records in the caller's scope, in the order they last changed;
        ``?changed_since=`` for incremental sync, ``?cursor=`` pages on."""
        record_type = _record_type(record_type)
        params = {k: flask.request.args.getlist(k) for k in flask.request.args
                  if k not in _KNOWN_ARGS}
        try:
            filters = records.field_filters(runtime().standards, current_user(), record_type,
                                            params)
        except records.BadFilter as exc:
            raise ApiError(exc.problem, {exc.field: [exc.problem]}, field=exc.field,
                           record_type=record_type) from None
        rows = records.list_records(
            db(), runtime().standards, current_user(), record_type, limit=args["limit"] + 1,
            after_seq=cursor_value(args), grid=args.get("grid"), retired=args.get("retired"),
            changed_since=clock.iso(args["changed_since"]) if "changed_since" in args else None,
            filters=filters)
        result = page(rows, args["limit"], lambda row: row[1])
        result["items"] = [shown for shown, _ in result["items"]]
        return result


@blp.route("/records/<record_type>/<key>")
class RecordResource(MethodView):
    @authenticated("read_records")
    @blp.response(200, RecordDetail)
    def get(self, record_type, key):
        """One record, its history (which submission set which value, when, confirmed by
        whom) and, per field, the change that set its current value."""
        record_type = _record_type(record_type)
        try:
            return records.get_record(db(), runtime().standards, current_user(), record_type,
                                      key)
        except records.NotFound:
            raise ApiError("not_found") from None
        except records.BadFilter as exc:
            raise ApiError(exc.problem, field=exc.field) from None
