"""Share: releases of the master tables, their data dictionary and their exports."""
from __future__ import annotations

import logging

import flask
from flask.views import MethodView

from .. import releases
from ..standards import RECORD_TYPES
from . import ApiError, Blueprint, authenticated, current_user, cursor_value, db, page, runtime
from .schemas import Dictionary, ExportArgs, NewRelease, Release, ReleaseList, ReleaseListArgs

log = logging.getLogger("gridcollect")

blp = Blueprint("releases", __name__, url_prefix="/api/v1",
                description="Share: frozen releases of the master tables, exported")


def _release(release_id):
    try:
        return releases.get(db(), release_id)
    except releases.NotFound:
        raise ApiError("not_found") from None


def _path(release):
    path = releases.file_path(release)
    if not path.is_file():  # moved or deleted on the server: logged, answered as missing
        log.error("release %s: its file %s is missing", release["id"], path)
        raise ApiError("not_found")
    return path


@blp.route("/releases")
class Releases(MethodView):
    @authenticated("create_release")
    @blp.arguments(NewRelease)
    @blp.response(201, Release)
    def post(self, new):
        """Snapshot every master table into a new read-only release (analysts, admins)."""
        rt = runtime()
        return releases.create(db(), rt.db_path, rt.standards, current_user(), new["note"],
                               rt.release_dir)

    @authenticated("read_releases")
    @blp.arguments(ReleaseListArgs, location="query")
    @blp.response(200, ReleaseList)
    def get(self, args):
        """Releases, newest first."""
        rows = releases.list_ready(db(), args["limit"] + 1, cursor_value(args))
        return page(rows, args["limit"], lambda row: row["id"])


@blp.route("/releases/<id:release_id>")
class ReleaseResource(MethodView):
    @authenticated("read_releases")
    @blp.response(200, Release)
    def get(self, release_id):
        """One release: its note, creator, time, counts and standard versions."""
        return _release(release_id)


@blp.route("/releases/<id:release_id>/dictionary")
class ReleaseDictionary(MethodView):
    @authenticated("read_releases")
    @blp.response(200, Dictionary)
    def get(self, release_id):
        """The data dictionary frozen in the release: every column's label, type,
        sensitivity and code table, and the code tables with their meanings."""
        return {"release": release_id, **releases.read_dictionary(_path(_release(release_id)))}


_TYPES = ", ".join(RECORD_TYPES)
_FORMATS = ", ".join(releases.FORMATS)


@blp.route(f"/releases/<id:release_id>/tables/<any({_TYPES}):record_type>"
           f".<any({_FORMATS}):fmt>")
class ReleaseTable(MethodView):
    @authenticated("read_releases")
    @blp.arguments(ExportArgs, location="query")
    @blp.doc(responses={"200": {"description": "the table, streamed", "content": {
        "text/csv": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {"schema": {"type": "array", "items": {
            "type": "object", "description": "a row: column name -> value"}}},
        releases.FORMATS["xlsx"]: {"schema": {"type": "string", "format": "binary"}}}}})
    def get(self, args, release_id, record_type, fmt):
        """A release table as CSV (UTF-8 with BOM; cells that a spreadsheet would run
        as formulas start with '), JSON or XLSX: streamed, masked for the caller, rows
        in the caller's scope; ``?labels=true`` adds the meaning of each code,
        ``?headers=zh`` heads the columns with their Chinese labels."""
        release = _release(release_id)
        _path(release)
        body = releases.export(db(), release, record_type, fmt, current_user(), args["labels"],
                               args["headers"])
        response = flask.Response(flask.stream_with_context(body),
                                  mimetype=releases.FORMATS[fmt])
        response.headers["Content-Disposition"] = (
            f'attachment; filename="release-{release_id}-{record_type}.{fmt}"')
        return response
