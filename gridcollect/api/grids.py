"""Grids in the caller's scope, and the effective standards of a grid for offline use."""
from __future__ import annotations

import json

import flask
from flask.views import MethodView

from .. import schema_export, workflow
from . import (
    ApiError,
    Blueprint,
    authenticated,
    current_user,
    cursor_value,
    db,
    no_content,
    page,
    runtime,
)
from .schemas import Grid, GridList, GridListArgs, Standards, StandardsArgs

blp = Blueprint("grids", __name__, url_prefix="/api/v1", description="Grids and standards")


def _grid(row, geometry=True) -> dict:
    out = dict(row)
    out["geometry"] = json.loads(row["geometry"]) if geometry and row["geometry"] else None
    return out


def grid_in_scope(code: str) -> dict:
    try:
        return workflow.get_grid(db(), current_user(), code)
    except workflow.NotFound:
        raise ApiError("not_found") from None


@blp.route("/grids")
class Grids(MethodView):
    @authenticated("read_grids")
    @blp.arguments(GridListArgs, location="query")
    @blp.response(200, GridList)
    def get(self, args):
        """Grids in the caller's scope, by code; ``under`` narrows to a prefix."""
        rows = workflow.list_grids(db(), current_user(), under=args.get("under"),
                                   after=cursor_value(args, "grid"), limit=args["limit"] + 1)
        result = page(rows, args["limit"], lambda row: row["code"])
        result["items"] = [_grid(row, args["geometry"]) for row in result["items"]]
        return result


@blp.route("/grids/<code>")
class GridResource(MethodView):
    @authenticated("read_grids")
    @blp.response(200, Grid)
    def get(self, code):
        """One grid with its geometry."""
        return _grid(grid_in_scope(code))


@blp.route("/grids/<code>/standards")
class GridStandards(MethodView):
    @authenticated("read_grids")
    @blp.arguments(StandardsArgs, location="query")
    @blp.response(200, Standards, headers={"ETag": {
        "description": "send it back in If-None-Match", "schema": {"type": "string"}}})
    @blp.alt_response(304, description="not modified since the ETag sent in If-None-Match")
    @blp.doc(parameters=[{"in": "header", "name": "If-None-Match", "required": False,
                          "schema": {"type": "string"}}])
    def get(self, args, code):
        """The effective standards of a grid, to validate offline.

        ``format=native`` (default): fields with rules, labels, sensitivity and
        code tables. ``format=json-schema``: one JSON Schema per record type.
        Send the ETag back in ``If-None-Match`` to download only when it changed.
        """
        grid_in_scope(code)
        standards = runtime().standards
        tag = schema_export.etag(standards, code, args["format"])
        if flask.request.if_none_match.contains_weak(tag):
            response = no_content(304)
        else:
            document = (schema_export.native(standards, code) if args["format"] == "native"
                        else schema_export.json_schemas(standards, code))
            response = flask.jsonify(document)
        response.set_etag(tag, weak=True)  # the same for its gzip form and its identity
        response.headers["Cache-Control"] = "private, no-cache"  # revalidate with the ETag
        return response
