"""Serve the gridcollect API on gunicorn (a production WSGI server).

    python server.py [--host 127.0.0.1] [--port 8000] [--db PATH] [--demo] [--workers N]

The database is created or migrated before the workers start; ``--demo``
fills an empty database with demo grids, users (passwords printed once) and
submissions. Several workers (processes) share the one SQLite file.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from gridcollect import clock, logs, releases, store, workflow
from gridcollect.app import MAX_COLLECT_WINDOW, create_app


class Server(BaseApplication):
    def __init__(self, config: dict, options: dict):
        self.config, self.options = config, options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            if key in self.cfg.settings:  # e.g. control_socket_disable is new in gunicorn 27
                self.cfg.set(key, value)

    def load(self):  # in each worker, after the fork: its own connections
        return create_app(self.config)


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


def _one_request_per_connection(worker, req):
    req.must_close = True  # the answer says "Connection: close"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--db", default=os.environ.get("GRIDCOLLECT_DB", "gridcollect.db"),
                        help="SQLite database file (default: $GRIDCOLLECT_DB or "
                             "./gridcollect.db)")
    parser.add_argument("--demo", action="store_true",
                        help="fill an empty database with demo grids, users and records")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="worker processes (default: one per core)")
    parser.add_argument("--threads", type=int, default=4,
                        help="threads per worker, for slow phone connections (default 4)")
    parser.add_argument("--collect-window", type=int, metavar="DAYS",
                        default=int(os.environ.get("GRIDCOLLECT_COLLECT_WINDOW_DAYS", 365)),
                        help="refuse entries collected more than DAYS before they arrive "
                             "(default: $GRIDCOLLECT_COLLECT_WINDOW_DAYS or 365)")
    args = parser.parse_args(argv)
    if not 1 <= args.collect_window <= MAX_COLLECT_WINDOW:
        parser.error(f"--collect-window must be 1 to {MAX_COLLECT_WINDOW} days")

    config = {"DATABASE": args.db, "COLLECTED_AT_WINDOW_DAYS": args.collect_window}
    db = store.connect(args.db)
    workflow.migrate(db, clock.iso(clock.now()))
    for release_id in releases.fail_abandoned(db, releases.release_dir(args.db)):
        print(f"release {release_id} was not finished (its builder died): failed, its "
              f"partial file deleted", file=sys.stderr)
    if args.demo:
        from gridcollect import demo
        from gridcollect.standards import load_standards
        if demo.is_empty(db):
            users = demo.fill(db, load_standards())
            print(f"Demo data written to {args.db}. Passwords are shown only now:")
            for username, role, scope, password in users:
                print(f"  {username:<11} {role:<11} {','.join(scope) or '(all)':<16} "
                      f"{password}")
        else:
            print(f"{args.db} is not empty: --demo left it as it is", file=sys.stderr)
    db.close()
    print(f"gridcollect serving http://{args.host}:{args.port}/api/v1 "
          f"(browsable API: /api/v1/docs) with {args.workers} workers", flush=True)
    Server(config, {
        "bind": f"{args.host}:{args.port}", "workers": args.workers,
        "worker_class": "gthread", "threads": args.threads, "timeout": 60,
        "graceful_timeout": 20,
        # One request per connection, so each request goes to whichever worker
        # is free to accept it: a kept-alive connection stays with the worker
        # that accepted it, and two busy phones on one worker share one core
        # while the other worker idles (measured: half the throughput).
        "pre_request": _one_request_per_connection,
        # gthread gives a new connection 5 s plus this long to send its first
        # bytes (a phone on a poor link can take that long) before closing it
        "keepalive": 10,
        "accesslog": "-", "errorlog": "-", "loglevel": "info",
        "logger_class": RedactingLogger,
        "control_socket_disable": True,
    }).run()


if __name__ == "__main__":
    main()
