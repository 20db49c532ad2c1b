"""Serve the API on gunicorn (a production WSGI server): ``gridcollect serve``.

Before the workers start: the port is checked free, the standards folder loaded
and the database created or migrated (so a start that cannot succeed leaves no new
file behind), abandoned releases failed, and ``--demo`` data written. "serving"
is printed once gunicorn is listening. Refusals gunicorn makes itself, before a
request reaches the app (a malformed request line, a URL or headers too long),
are answered in the API's JSON error shape with its security headers.
"""
from __future__ import annotations

import errno
import json
import logging
import socket
import sys

from gunicorn import glogging, util
from gunicorn.app.base import BaseApplication

from . import app as app_module
from . import clock, errors, logs, releases, store, workflow
from .standards import load_standards


class ServeError(Exception):
    """A start that cannot succeed: the message says why; nothing was written."""


class Server(BaseApplication):
    def __init__(self, config: dict, options: dict):
        self.config, self.options = config, options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            if key in self.cfg.settings:  # e.g. control_socket_disable is new in gunicorn 27
                self.cfg.set(key, value)

    def load(self):  # in each worker, after the fork: its own connections
        return app_module.create_app(self.config)


class RedactingLogger(glogging.Logger):
    """Gunicorn's logs, and the app's, with no ID number in any line and query values
    shown only for parameters that carry no personal data (gridcollect.logs)."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers + self.access_log.handlers:
            handler.addFilter(logs.RedactFilter())
        app_log = logging.getLogger("gridcollect")  # the app's lines go where gunicorn's go
        app_log.handlers, app_log.propagate = list(self.error_log.handlers), False
        app_log.setLevel(self.error_log.level)

    def warning(self, msg, *args, **kwargs):
        # gunicorn's refusal of a malformed request quotes the offending line or header,
        # which may hold a token or a query: the log keeps what was wrong, not the text
        if msg.startswith("Invalid request from ip="):
            msg = msg.split("'", 1)[0].rstrip(": ") + " (the request's text is not logged)"
        super().warning(msg, *args, **kwargs)

    def exception(self, msg, *args, **kwargs):
        if msg.startswith("Error handling request"):  # its arguments: method and URI
            args = tuple(logs.request_target(a) if isinstance(a, str) and "/" in a else a
                         for a in args)
        super().exception(msg, *args, **kwargs)

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        target = logs.request_target(environ.get("RAW_URI", ""))
        atoms.update(r=f"{environ['REQUEST_METHOD']} {target} {environ['SERVER_PROTOCOL']}",
                     U=target.partition("?")[0], q=target.partition("?")[2],
                     f=logs.request_target(atoms["f"]), a=logs.printable(atoms["a"]))
        for secret in ("{authorization}i", "{cookie}i"):
            atoms.pop(secret, None)
        return atoms


# gunicorn's own refusals (gunicorn.workers.base.handle_error): status -> problem
_GUNICORN_PROBLEMS = {400: "bad_request", 403: "bad_request", 414: "uri_too_long",
                      417: "bad_request", 431: "headers_too_large", 501: "bad_request"}


def write_error(sock, status_int, reason, mesg):
    """gunicorn.util.write_error, in the API's error shape. ``mesg`` quotes the request
    (it may hold a token or an ID number): it is not sent back."""
    problem = _GUNICORN_PROBLEMS.get(status_int, "internal")
    message = errors.problem(problem)[1]
    body = json.dumps({"code": status_int, "status": reason, "message": message,
                       "error": problem, "errors": {}}, ensure_ascii=False).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in app_module.SECURITY_HEADERS.items())
            + "Cache-Control: no-store\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


def _one_request_per_connection(worker, req):
    req.must_close = True  # the answer says "Connection: close"


_OPTIONS = {"COLLECTED_AT_WINDOW_DAYS": "--collect-window",
            "TRUSTED_PROXIES": "--trusted-proxies"}  # app.RANGES, as options


def check_port(host: str, port: int):
    """Refuse at once, before anything is written, a port another process listens on."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ServeError(f"--host {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServeError(f"port {port} on {host} is in use by another program: "
                                 f"stop it or choose another --port") from None
            raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def prepare(db_path: str, standards_dir, demo: bool, out=sys.stdout, err=sys.stderr):
    """The standards loaded (errors raised before the database is touched), then the
    database created or migrated, abandoned releases failed, demo data written."""
    standards = load_standards(standards_dir)  # StandardError: a bad folder, said clearly
    try:
        db = store.connect(db_path)
    except store.MissingFolder as exc:
        raise ServeError(f"--db {db_path}: {exc}") from None
    try:
        workflow.migrate(db, clock.iso(clock.now()))
        for release_id in releases.fail_abandoned(db, releases.release_dir(db_path)):
            print(f"release {release_id} was not finished (its builder died): failed, its "
                  f"partial file deleted", file=err)
        if demo:
            from . import demo as demo_data
            if demo_data.is_empty(db):
                users = demo_data.fill(db, standards)
                print(f"Demo data written to {db_path}. Passwords are shown only now:",
                      file=out)
                for username, role, scope, password in users:
                    print(f"  {username:<11} {role:<11} {','.join(scope) or '(all)':<16} "
                          f"{password}", file=out)
            else:
                print(f"{db_path} is not empty: --demo left it as it is", file=err)
    finally:
        db.close()


def serve(*, db_path: str, host: str, port: int, workers: int, threads: int, demo: bool,
          standards_dir, collect_window: int, trusted_proxies: int):
    """Check, prepare, then run gunicorn until SIGTERM or SIGINT."""
    config = {"DATABASE": db_path, "STANDARDS": standards_dir,
              "COLLECTED_AT_WINDOW_DAYS": collect_window, "TRUSTED_PROXIES": trusted_proxies}
    try:
        app_module.check_settings(config)  # here, not first in each worker after the fork
    except app_module.SettingError as exc:
        raise ServeError(exc.message(_OPTIONS[exc.key])) from None
    check_port(host, port)
    prepare(db_path, standards_dir, demo)
    shown = f"[{host}]" if ":" in host else host

    def when_ready(arbiter):
        print(f"gridcollect serving http://{shown}:{port}/ (console: /console/, API: "
              f"/api/v1, browsable API: /api/v1/docs) with {workers} workers", flush=True)

    util.write_error = write_error  # the workers are forked from here: they inherit it
    Server(config, {
        "bind": f"{shown}:{port}", "workers": workers,
        "worker_class": "gthread", "threads": threads, "timeout": 60,
        "graceful_timeout": 20,
        # One request per connection, so each request goes to whichever worker
        # is free to accept it: a kept-alive connection stays with the worker
        # that accepted it, and two busy phones on one worker share one core
        # while the other worker idles (measured: half the throughput).
        "pre_request": _one_request_per_connection,
        "when_ready": when_ready,
        # gthread gives a new connection 5 s plus this long to send its first
        # bytes (a phone on a poor link can take that long) before closing it
        "keepalive": 10,
        "accesslog": "-", "errorlog": "-", "loglevel": "info",
        "logger_class": RedactingLogger,
        "control_socket_disable": True,
    }).run()
