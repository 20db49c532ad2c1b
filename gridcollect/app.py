"""``create_app(config=None)``: configuration, storage, blueprints, one error shape."""
from __future__ import annotations

import datetime
import io
import logging
import os
import pathlib
import sqlite3
import threading
from http import HTTPStatus

import flask
import flask_smorest
import swagger_ui_bundle
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from . import accounts, clock, compression, console, errors, openrosa, releases, store, workflow
from .api import ApiError, blueprints
from .api.refusals import RefusalsPlugin
from .api.schemas import Error, Timestamp, TooManyItems
from .standards import load_standards
from .workflow import GridCache

log = logging.getLogger("gridcollect")

DEFAULTS = {
    "DATABASE": os.environ.get("GRIDCOLLECT_DB", "gridcollect.db"),
    "STANDARDS": None,  # a field_standards folder; None: the bundled standards
    "PHOTO_DIR": None,  # None: "<DATABASE>-photos" beside the database
    "RELEASE_DIR": None,  # None: "<DATABASE>-releases" beside the database
    "MAX_JSON_BYTES": 8 * 1024 * 1024,  # 500 records of up to 16 kB each
    "MAX_PHOTO_BYTES": 10 * 1024 * 1024,
    "TOKEN_TTL_HOURS": 24 * 7,
    "SCRYPT_N": 2 ** 15,
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_MAX_FAILURES_PER_ADDRESS": 30,
    "LOGIN_FAILURE_WINDOW_MINUTES": 15,
    # an entry collected longer ago than this before it reaches the server is refused
    "COLLECTED_AT_WINDOW_DAYS": 365,  # 1 to MAX_COLLECT_WINDOW
    # reverse proxies in front of the server whose X-Forwarded-For and -Proto are
    # believed (the client's address is what login throttling counts): 0, none
    "TRUSTED_PROXIES": 0,  # 0 to MAX_TRUSTED_PROXIES
    # flask-smorest: the OpenAPI document and a browsable page served from this
    # server (swagger-ui-bundle), so it works on a closed government network
    "API_TITLE": "gridcollect",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": "/api/v1/docs/assets/",
    "API_SPEC_OPTIONS": {
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "info": {"description": "Grid-based community data collection (网格化管理): "
                                "collect, validate, confirm. Log in with POST /auth/token, "
                                "then send Authorization: Bearer <token>."},
    },
}


MAX_COLLECT_WINDOW = 36_500  # days: a century, and well inside what a datetime holds
MAX_TRUSTED_PROXIES = 5
# settings with a range: key -> (lowest, highest, unit)
RANGES = {"COLLECTED_AT_WINDOW_DAYS": (1, MAX_COLLECT_WINDOW, " days"),
          "TRUSTED_PROXIES": (0, MAX_TRUSTED_PROXIES, "")}


class SettingError(ValueError):
    """A setting out of its range: ``key``, and the message with ``name`` for it."""

    def __init__(self, key: str):
        self.key = key
        super().__init__(self.message(key))

    def message(self, name: str) -> str:
        low, high, unit = RANGES[self.key]
        return f"{name} must be {low} to {high}{unit}"


def check_settings(config):
    """Raise SettingError for the first setting out of its range."""
    for key, (low, high, _) in RANGES.items():
        if not low <= config[key] <= high:
            raise SettingError(key)

SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                    "Referrer-Policy": "no-referrer",
                    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"}


class Runtime:
    """What the views share in one process: settings, standards, connections, caches."""

    def __init__(self, config):
        self.db_path = str(config["DATABASE"])
        self.standards = load_standards(config["STANDARDS"])
        self.photo_dir = pathlib.Path(config["PHOTO_DIR"] or self.db_path + "-photos")
        self.release_dir = pathlib.Path(config["RELEASE_DIR"]
                                        or releases.release_dir(self.db_path))
        self.account_settings = accounts.Settings(
            token_ttl=datetime.timedelta(hours=config["TOKEN_TTL_HOURS"]),
            scrypt_n=config["SCRYPT_N"], max_failures=config["LOGIN_MAX_FAILURES"],
            max_failures_per_address=config["LOGIN_MAX_FAILURES_PER_ADDRESS"],
            failure_window=datetime.timedelta(minutes=config["LOGIN_FAILURE_WINDOW_MINUTES"]))
        check_settings(config)
        self.collect_window = datetime.timedelta(days=config["COLLECTED_AT_WINDOW_DAYS"])
        self.grids = GridCache()
        self._local = threading.local()

    def db(self):
        """This thread's connection (opened again after a fork)."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.db, local.pid = store.connect(self.db_path), os.getpid()
        return local.db


class Api(flask_smorest.Api):
    ERROR_SCHEMA = Error


class RowId(IntegerConverter):
    """``<id:…>``: an SQLite row id in ASCII digits. Anything else (full-width
    digits, 20-digit numbers) matches no route: 404, exactly like a missing row."""

    regex = r"[0-9]{1,19}"

    def __init__(self, url_map):
        super().__init__(url_map, min=1, max=store.MAX_ROW_ID)


def _row_id_schema(converter):
    return {"type": "integer", "minimum": 1, "maximum": store.MAX_ROW_ID}


def create_app(config=None) -> flask.Flask:
    app = flask.Flask("gridcollect")
    app.config.update(DEFAULTS)
    app.config.update(config or {})
    app.config["MAX_CONTENT_LENGTH"] = max(app.config["MAX_JSON_BYTES"],
                                           app.config["MAX_PHOTO_BYTES"])
    app.json.ensure_ascii = False  # Chinese as Chinese
    runtime = app.extensions["gridcollect"] = Runtime(app.config)
    workflow.migrate(runtime.db(), clock.iso(clock.now()))

    app.url_map.converters["id"] = RowId
    api = Api(app, spec_kwargs={"extra_plugins": [RefusalsPlugin(app)]})
    api.register_converter(RowId, _row_id_schema)
    api.register_field(Timestamp, "string", "date-time")
    for blueprint in blueprints():
        api.register_blueprint(blueprint)
    app.register_blueprint(_docs_assets())
    app.register_blueprint(console.blp)
    app.register_blueprint(openrosa.blp)
    app.add_url_rule("/", "home", lambda: flask.redirect("/console/"))
    # the browsable API with a trailing slash too, as people type it
    app.add_url_rule("/api/v1/docs/", "docs_slash",
                     app.view_functions["api-docs.openapi_swagger_ui"])

    proxies = app.config["TRUSTED_PROXIES"]  # in range: Runtime checked it
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)

    app.before_request(_limit_body)
    app.after_request(_security_headers)
    app.after_request(compression.compress_response)  # runs first: Vary before no-store
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(TooManyItems, lambda exc: _api_error(
        ApiError("too_many_items", count=exc.args[0])))
    app.register_error_handler(store.Busy, _busy)
    app.register_error_handler(sqlite3.OperationalError, _database_error)
    app.register_error_handler(Exception, _internal_error)
    return app


def _docs_assets() -> flask.Blueprint:
    return flask.Blueprint("docs_assets", __name__,
                           static_folder=swagger_ui_bundle.swagger_ui_path,
                           static_url_path="/api/v1/docs/assets")


_RAW_BODY_ENDPOINTS = {"submissions.Photos"}


def _limit_body():
    """JSON bodies are smaller than photos; a JSON endpoint needs a JSON body."""
    request = flask.request
    config = flask.current_app.config
    if request.routing_exception is not None:
        return  # no such route: answered 404/405 whatever the body
    raw = request.endpoint in _RAW_BODY_ENDPOINTS
    limit = config["MAX_PHOTO_BYTES"] if raw else config["MAX_JSON_BYTES"]
    request.max_content_length = limit
    if request.blueprint == "console":
        return  # HTML forms, parsed (and limited) by werkzeug; the console answers in pages
    if request.blueprint == "openrosa":  # a form's XML and its photo, multipart
        request.max_content_length = config["MAX_PHOTO_BYTES"] + openrosa.MAX_INSTANCE_BYTES
        return
    if request.method not in ("POST", "PUT", "PATCH") or not (
            request.content_length or request.headers.get("Transfer-Encoding")):
        return
    if not raw and request.mimetype != "application/json":
        raise ApiError("unsupported_media_type", expected="application/json")
    if request.content_length is not None and request.content_length > limit:
        raise ApiError("too_large", limit=limit)
    if request.headers.get("Content-Encoding"):  # a phone's gzip: limits hold after it
        try:
            compression.decompress_body(request.environ, limit)
        except compression.BodyError as exc:
            raise ApiError(exc.problem, **exc.values) from None
    elif request.content_length is None:
        _read_unsized_body(request.environ, limit)


def _read_unsized_body(environ, limit):
    """Read a body sent without a length (chunked) here, so that one over the limit is
    refused whole (413) rather than cut at the limit and taken for complete."""
    stream, data = environ["wsgi.input"], bytearray()
    try:
        while len(data) <= limit:
            chunk = stream.read(min(65536, limit + 1 - len(data)))
            if not chunk:
                break
            data += chunk
    except Exception:  # the server's errors for malformed chunks, or the
        raise ApiError("bad_body") from None  # phone gone mid-body: all mean no body
    if len(data) > limit:
        raise ApiError("too_large", limit=limit)
    environ["wsgi.input"] = io.BytesIO(bytes(data))
    environ["CONTENT_LENGTH"] = str(len(data))
    environ.pop("HTTP_TRANSFER_ENCODING", None)


def _security_headers(response):
    headers = response.headers
    for key in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
        headers.setdefault(key, SECURITY_HEADERS[key])
    if flask.request.path.startswith("/api/v1/docs"):
        # the page's inline start-up script; every asset comes from this server
        headers.setdefault("Content-Security-Policy",
                           "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                           "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                           "frame-ancestors 'none'")
    elif console.handles(flask.request.path):
        headers.setdefault("Content-Security-Policy", console.CSP)
        headers.setdefault("Cache-Control", "no-store")
    else:
        headers.setdefault("Content-Security-Policy", SECURITY_HEADERS["Content-Security-Policy"])
        headers.setdefault("Cache-Control", "no-store")
    return response


DRAIN_BYTES = 64 * 1024 * 1024


def _drain_refused_body():
    """Read and drop a refused body (up to DRAIN_BYTES), so the client, still
    sending, receives the 413 instead of a connection reset."""
    stream = flask.request.environ.get("wsgi.input")
    left = min(flask.request.content_length or DRAIN_BYTES, DRAIN_BYTES)
    try:
        while left > 0:
            chunk = stream.read(min(left, 65536))
            if not chunk:
                break
            left -= len(chunk)
    except (OSError, ValueError):
        pass  # the client went away: nothing to answer


def _error_response(status: int, problem: str, message: str, field_errors=None, headers=None):
    if status == 413:
        _drain_refused_body()
    body = {"code": status, "status": _reason(status), "message": message, "error": problem,
            "errors": field_errors or {}}
    response = flask.jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _reason(status):
    return HTTPStatus(status).phrase


def _api_error(exc: ApiError):
    if console.handles(flask.request.path):
        return console.error_page(exc.status)
    return _error_response(exc.status, exc.problem, exc.message, exc.field_errors, exc.headers)


_HTTP_PROBLEMS = {400: "bad_json", 401: "auth_required", 404: "not_found",
                  405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
                  422: "invalid_request"}


def _http_error(exc: HTTPException):
    """Routing errors, 413 from werkzeug and 422 from webargs, in the one shape."""
    if exc.code == 304:
        return exc
    if console.handles(flask.request.path):
        return console.http_error(exc)
    problem = _HTTP_PROBLEMS.get(exc.code)
    field_errors = None
    messages = (getattr(exc, "data", None) or {}).get("messages")
    if isinstance(messages, dict):
        # {"json": {...}} or {"query": {...}}: the location is implied by the endpoint
        field_errors = (next(iter(messages.values())) if len(messages) == 1 else messages)
    if problem is None:
        return _error_response(exc.code, "http_" + str(exc.code), exc.description or "",
                               field_errors)
    values = {"limit": flask.request.max_content_length, "detail": exc.description,
              "expected": "application/json"}
    message = errors.problem(problem, **values)[1]
    allow = dict(exc.get_headers()).get("Allow")  # a 405 says what is allowed
    return _error_response(exc.code, problem, message, field_errors,
                           {"Allow": allow} if allow else None)


def _busy(exc):
    if console.handles(flask.request.path):
        return console.error_page(503)
    status, message = errors.problem("busy")
    return _error_response(status, "busy", message, headers={"Retry-After": "2"})


def _database_error(exc: sqlite3.OperationalError):
    if "locked" in str(exc) or "busy" in str(exc):
        return _busy(exc)
    return _internal_error(exc)


def _internal_error(exc):
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    log.exception("internal error on %s %s", flask.request.method, flask.request.path)
    if console.handles(flask.request.path):
        return console.error_page(500)
    status, message = errors.problem("internal")
    return _error_response(status, "internal", message)
