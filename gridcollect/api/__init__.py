"""The HTTP API: one blueprint per resource, sharing authentication, errors and paging."""
from __future__ import annotations

import functools
import json
import re

import flask
import flask_smorest
from webargs.flaskparser import FlaskParser

from .. import access, accounts, errors, store
from ..grids import is_grid_code, is_prefix


class ApiError(Exception):
    """A refusal from the problem catalogue (``errors.PROBLEMS``)."""

    def __init__(self, problem: str, field_errors=None, headers=None, **values):
        self.status, self.message = errors.problem(problem, **values)
        super().__init__(self.message)
        self.problem, self.field_errors, self.headers = problem, field_errors, headers or {}


_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _lone_surrogate(value) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_lone_surrogate(k) or _lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_lone_surrogate(v) for v in value)
    return False


class Parser(FlaskParser):
    """webargs' parser, also refusing what json.loads accepts but cannot be stored:
    nesting too deep to parse, integers too long, lone UTF-16 surrogates."""

    def _raw_load_json(self, req):
        if req.mimetype != "application/json":
            return super()._raw_load_json(req)
        raw = req.get_data(cache=True)
        try:
            # strictly UTF-8 (json.loads would guess UTF-16/32 from bytes, and the
            # strict codec also refuses surrogates written straight into the bytes)
            value = json.loads(raw.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise ApiError("bad_json", detail="not UTF-8") from None
        except RecursionError:
            raise ApiError("bad_json", detail="nested too deeply") from None
        except ValueError as exc:
            raise ApiError("bad_json", detail=str(exc)[:200]) from None
        if _ESCAPED_SURROGATE.search(raw) and _lone_surrogate(value):
            raise ApiError("bad_json", detail="lone UTF-16 surrogate in a string")
        return value


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()


def runtime():
    return flask.current_app.extensions["gridcollect"]


def db():
    return runtime().db()


def current_user() -> access.User:
    return flask.g.user


def authenticated(permission: str | None = None):
    """Require a valid bearer token, and the role to hold ``permission``."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            header = flask.request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiError("auth_required", headers={"WWW-Authenticate": "Bearer"})
            user = accounts.authenticate(db(), token.strip())
            if user is None:
                raise ApiError("token_invalid", headers={"WWW-Authenticate": "Bearer"})
            flask.g.user, flask.g.token = user, token.strip()
            if permission is not None and not access.allowed(user, permission):
                raise ApiError("role_forbidden", role=user.role)
            return view(*args, **kwargs)

        wrapper._permission = permission  # read by the authorization tests and docs
        return wrapper

    return decorate


def no_content(status: int) -> flask.Response:
    """A 204 or 304: no body, so no Content-Type either."""
    response = flask.Response(status=status)
    del response.headers["Content-Type"]
    return response


def page(rows: list, limit: int, key) -> dict:
    """A list answer: ``rows`` was fetched with ``limit + 1`` to know if more follow."""
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next": store.encode_cursor(key(rows[-1])) if more else None}


# what a page may continue after: a row id, a grid code, an area ("" is the city)
CURSORS = {
    "row": lambda v: type(v) is int and 1 <= v <= store.MAX_ROW_ID,
    "grid": lambda v: type(v) is str and is_grid_code(v),
    "area": lambda v: type(v) is str and (v == "" or is_prefix(v)),
}


def cursor_value(args: dict, kind="row"):
    """The row id, grid code or area (``kind``) a page continues after."""
    if "cursor" not in args:
        return None
    try:
        value = store.decode_cursor(args["cursor"])
    except ValueError:
        raise ApiError("bad_cursor") from None
    if not CURSORS[kind](value):
        raise ApiError("bad_cursor")
    return value


def blueprints() -> list:
    from . import (audit, auth, grids, monitor, moves, records, releases, reviews, submissions,
                   users)
    return [auth.blp, grids.blp, submissions.blp, reviews.blp, moves.blp, records.blp,
            monitor.blp, releases.blp, users.blp, audit.blp]
