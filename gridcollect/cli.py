"""The ``gridcollect`` command line."""
from __future__ import annotations

import functools
import json
import os
import sys
import time

import click

from .checks import Context
from .filecheck import check_files
from .grids import Grid, GridFileError, is_grid_code, is_prefix, load_geojson, read_geojson
from .logs import printable
from .standards import RECORD_TYPES, StandardError, load_standards
from .tabular import SPREADSHEETS, FileError, file_format

USAGE_ERROR = 2


class Progress:
    """Rows validated so far, on stderr, at most once a second, after the first."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.started = self.shown = time.monotonic()
        self.tty = stream.isatty()

    def __call__(self, rows):
        now = time.monotonic()
        if now - self.shown < 1:
            return
        self.shown = now
        rate = rows / (now - self.started)
        end = "\r" if self.tty else "\n"
        self.stream.write(f"validated {rows:,} rows ({rate:,.0f} rows/s){end}")
        self.stream.flush()

    def finish(self):
        if self.tty and self.shown != self.started:
            self.stream.write("\n")


def _message(exc) -> str:
    return exc.message if isinstance(exc, click.UsageError) else str(exc)


def rows_option(command):
    return click.option(
        "--rows", "rows", type=click.Choice(["sheet", "data"]), default="sheet",
        show_default=True,
        help="How rows of CSV and XLSX files are numbered in reports: as a spreadsheet "
             "shows them (sheet: the header is row 1, the first record row 2), or "
             "counting records only (data: the first record is row 1). JSON: the "
             "record's place in the array; JSON Lines: its line.")(command)


def _row(path, row: int, rows: str) -> int:
    """A row number (as read: the spreadsheet's) in the report's convention."""
    return row - 1 if rows == "data" and _spreadsheet(path) else row


@functools.lru_cache(maxsize=64)
def _spreadsheet(path) -> bool:  # asked once per report row: once per file is enough
    return file_format(path) in SPREADSHEETS


@click.group()
@click.version_option(package_name="gridcollect")
def main():
    """gridcollect: grid-based community data collection (网格化管理)."""


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--type", "record_type", required=True, type=click.Choice(RECORD_TYPES),
              help="Record type of every row.")
@click.option("--grid", "grid_code", metavar="CODE",
              help="Grid cell (15 digits) or prefix: applies its overlays and grid rules.")
@click.option("--grids", "grids_file", type=click.Path(exists=True, dir_okay=False),
              help="GeoJSON of grid cells: with --grid, locations must lie inside that cell.")
@click.option("--standards", "standards_dir", type=click.Path(file_okay=False),
              help="A field_standards folder (default: the bundled standards).")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Report format on stdout.")
@click.option("--jobs", type=click.IntRange(1, 64), default=None,
              help="Worker processes for big files (default: one per core).")
@rows_option
def validate(files, record_type, grid_code, grids_file, standards_dir, output, jobs, rows):
    """Validate CSV, XLSX, JSON or JSON Lines FILES against the field standards.

    A release export can be validated as it is: the columns it adds (key,
    grid_code, version, created_at, updated_at, code meanings) are not checked.
    Exit status: 0 every row valid, 1 some rows invalid, 2 usage or file error.
    """
    out = click.get_text_stream("stdout", errors="backslashreplace")  # lone surrogates too
    counts = {"total": 0, "valid": 0, "invalid": 0}
    try:
        for path in files:
            if not os.path.isfile(path):
                raise FileError(f"{path}: " + ("not a file" if os.path.exists(path)
                                               else "no such file"))
            file_format(path)
        standards = load_standards(standards_dir)
        if grid_code is not None and not is_prefix(grid_code):
            raise click.UsageError(f"--grid must be a grid code or prefix of 6, 9, 12 or 15 "
                                   f"digits, not {grid_code!r}")
        standard = standards.effective(record_type, grid_code)
        grid = Grid(grid_code) if grid_code and is_grid_code(grid_code) else None
        if grids_file is not None:
            if grid is None:
                raise click.UsageError("--grids needs --grid with a 15-digit grid code")
            grid = load_geojson(grids_file).get(grid_code)
            if grid is None:
                raise click.UsageError(f"grid {grid_code} is not in {grids_file}")
    except (StandardError, FileError, GridFileError, click.UsageError) as exc:
        if output == "json":  # a machine reading stdout gets JSON whatever happens
            out.write(json.dumps({**counts, "rows": [], "error": _message(exc)},
                                 ensure_ascii=False) + "\n")
        raise click.UsageError(_message(exc)) from None
    progress = Progress()
    try:
        if output == "json":
            out.write('{"rows": [')
        for result in check_files(files, standard, Context(grid), jobs, progress):
            counts["total"] += 1
            counts["valid" if result.valid else "invalid"] += 1
            row = _row(result.file, result.row, rows)
            if output == "json":
                out.write(("" if counts["total"] == 1 else ",\n")
                          + json.dumps({**result.as_dict(), "row": row}, ensure_ascii=False))
            else:
                for error in result.errors:
                    out.write(printable(f"{result.file}:{row}: {error.field or '-'} "
                                         f"[{error.code}] {error.message}") + "\n")
    except BrokenPipeError:  # e.g. | head: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1 if counts["invalid"] else 0)
    except FileError as exc:
        if output == "json":  # keep stdout valid JSON
            out.write("], " + json.dumps({**counts, "error": str(exc)}, ensure_ascii=False)[1:]
                      + "\n")
        out.flush()
        click.echo(f"Error: {exc}", err=True)
        sys.exit(USAGE_ERROR)
    finally:
        progress.finish()
    if output == "json":
        out.write("], " + json.dumps(counts)[1:] + "\n")
    else:
        out.write(f"{counts['total']} rows: {counts['valid']} valid, "
                  f"{counts['invalid']} invalid (standard {standard.record_type} "
                  f"{standard.version})\n")
    sys.exit(1 if counts["invalid"] else 0)


# --- the server ---------------------------------------------------------------------------

@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--db", "db_path", envvar="GRIDCOLLECT_DB", default="gridcollect.db",
              show_default=True, type=click.Path(dir_okay=False),
              help="SQLite database file (or GRIDCOLLECT_DB); created if missing.")
@click.option("--standards", "standards_dir", envvar="GRIDCOLLECT_STANDARDS",
              type=click.Path(file_okay=False),
              help="The city's field_standards folder (or GRIDCOLLECT_STANDARDS; "
                   "default: the bundled national standards).")
@click.option("--demo", is_flag=True,
              help="Fill an empty database with demo grids, users and records.")
@click.option("--workers", type=click.IntRange(1, 64), default=os.cpu_count() or 2,
              show_default="one per core", help="Worker processes.")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Threads per worker, for slow phone connections.")
@click.option("--collect-window", type=int, metavar="DAYS",
              envvar="GRIDCOLLECT_COLLECT_WINDOW_DAYS", default=365, show_default=True,
              help="Refuse entries collected more than DAYS before they arrive (or "
                   "GRIDCOLLECT_COLLECT_WINDOW_DAYS).")
@click.option("--trusted-proxies", type=int, metavar="N", envvar="GRIDCOLLECT_TRUSTED_PROXIES",
              default=0, show_default=True,
              help="Reverse proxies in front of the server whose X-Forwarded-For and "
                   "X-Forwarded-Proto are believed (or GRIDCOLLECT_TRUSTED_PROXIES). "
                   "0: none; set it only when every request comes through them.")
def serve(db_path, host, port, standards_dir, demo, workers, threads, collect_window,
          trusted_proxies):
    """Serve the API on gunicorn until stopped (Ctrl-C or SIGTERM).

    The database is created or migrated before the workers start; several workers
    (processes) share the one SQLite file.
    """
    from . import serve as server
    try:
        server.serve(db_path=db_path, host=host, port=port, workers=workers,
                     threads=threads, demo=demo, standards_dir=standards_dir,
                     collect_window=collect_window, trusted_proxies=trusted_proxies)
    except (server.ServeError, StandardError) as exc:
        raise click.UsageError(str(exc)) from None


# --- the database: init-db, grids, users ----------------------------------------------

def db_option(command):
    return click.option("--db", "db_path", envvar="GRIDCOLLECT_DB", default="gridcollect.db",
                        show_default=True, type=click.Path(dir_okay=False),
                        help="SQLite database file (or GRIDCOLLECT_DB).")(command)


def _actor() -> str:
    import getpass
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _open(db_path, create=False):
    """The database, migrated; refuses to create one unless asked."""
    from . import clock, store, workflow
    import sqlite3
    if not create and not os.path.exists(db_path):
        raise click.UsageError(f"{db_path}: no such database; create it with "
                               f"`gridcollect init-db --db {db_path}`")
    try:
        db = store.connect(db_path)
        workflow.migrate(db, clock.iso(clock.now()))
    except sqlite3.DatabaseError as exc:  # no folder, not a database, read-only, newer
        raise click.UsageError(f"{db_path}: {exc}") from None
    return db


@main.command("init-db")
@db_option
def init_db(db_path):
    """Create the database (or bring an existing one up to date)."""
    from . import store
    existed = os.path.exists(db_path)
    db = _open(db_path, create=True)
    click.echo(f"{db_path}: {'up to date' if existed else 'created'}, "
               f"schema version {store.schema_version(db)}")


@main.group()
def grids():
    """Grid cells: import from GeoJSON, list."""


@grids.command("import")
@click.argument("geojson", type=click.Path(exists=True, dir_okay=False))
@db_option
def grids_import(geojson, db_path):
    """Import or update grid cells from a GeoJSON FeatureCollection.

    Each Feature needs properties `code` (15 digits) and `name`, and a valid
    Polygon or MultiPolygon in WGS 84 lon/lat; optional properties `district`,
    `street` and `community` name the areas above the grid (the monitor shows
    them). The file is checked whole before anything is written, and every bad
    feature is reported.
    """
    from . import workflow
    try:
        cells, area_names = read_geojson(geojson)
    except GridFileError as exc:
        problems = str(exc).splitlines()
        for line in problems[:-1]:
            click.echo(line, err=True)
        raise click.UsageError(problems[-1] + (f" ({len(problems)} problems listed above "
                                               f"and here; nothing was imported)"
                                               if len(problems) > 1 else "")) from None
    figures = workflow.import_grids(_open(db_path), _actor(), cells, area_names,
                                    os.path.basename(geojson))
    added, changed, renamed = figures["added"], figures["changed"], figures["area_names"]
    click.echo(f"{len(cells)} grids in {geojson}: {added} added, {changed} changed, "
               f"{len(cells) - added - changed} unchanged"
               + (f"; {renamed} district, street or community names set" if renamed else ""))


@grids.command("list")
@click.option("--under", metavar="PREFIX", help="Only grids under this prefix.")
@db_option
def grids_list(under, db_path):
    """List grid cells: code and name."""
    from . import store
    if under is not None and not is_prefix(under):
        raise click.UsageError("--under must be a prefix of 6, 9, 12 or 15 digits")
    after = None
    db = _open(db_path)
    while True:
        rows = store.list_grids(db, None, under, after, 1000)
        for row in rows:
            click.echo(f"{row['code']}\t{row['name']}")
        if len(rows) < 1000:
            break
        after = rows[-1]["code"]


@main.group()
def users():
    """Users: add, list, change role or scope, reset passwords, unlock, revoke tokens."""


def _scopes(values) -> list:
    return [p for value in values for p in value.replace(",", " ").split()]


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        raise click.UsageError("no terminal to ask for the password: use --password-stdin")
    return password


def _account_call(function, *args, **kwargs):
    from . import accounts
    try:
        return function(*args, **kwargs)
    except accounts.AccountError as exc:
        raise click.UsageError(str(exc)) from None
    except LookupError as exc:
        raise click.UsageError(f"no such user: {exc.args[0]}") from None


@users.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["worker", "supervisor", "analyst",
                                                          "admin"]))
@click.option("--scope", "scope", multiple=True, metavar="PREFIX",
              help="Grid code prefix (6, 9, 12 or 15 digits); repeat it or separate by commas.")
@click.option("--unmasked", is_flag=True, help="Analyst sees personal fields unmasked.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@db_option
def users_add(username, role, scope, unmasked, password_stdin, db_path):
    """Add a user with a role and scope prefixes."""
    from . import accounts
    db = _open(db_path)
    password = _read_password(password_stdin)
    user = _account_call(accounts.add_user, db, _actor(), username, role, _scopes(scope),
                         password, unmasked)
    click.echo(f"added {user.username} ({user.role}, scope {' '.join(user.scope) or '-'})")


@users.command("list")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@db_option
def users_list(output, db_path):
    """List users with role, scope and status."""
    from . import store
    rows = store.list_users(_open(db_path))
    if output == "json":
        click.echo(json.dumps([{k: r[k] for k in ("username", "role", "scope", "unmasked",
                                                  "disabled")} for r in rows],
                              ensure_ascii=False))
        return
    click.echo("username\trole\tscope\tstatus")
    for r in rows:
        status = ["disabled" if r["disabled"] else "active"]
        if r["unmasked"]:
            status.append("unmasked")
        click.echo(f"{r['username']}\t{r['role']}\t{','.join(r['scope']) or '(all)'}\t"
                   f"{','.join(status)}")


@users.command("set")
@click.argument("username")
@click.option("--role", type=click.Choice(["worker", "supervisor", "analyst", "admin"]))
@click.option("--scope", "scope", multiple=True, metavar="PREFIX",
              help="Replace the scope; repeat it or separate by commas.")
@click.option("--unmasked/--masked", default=None, help="Personal fields unmasked or not.")
@click.option("--disable/--enable", "disabled", default=None,
              help="Disable the user (revokes its tokens) or enable it again.")
@db_option
def users_set(username, role, scope, unmasked, disabled, db_path):
    """Change a user's role, scope, unmasking, or disable it."""
    from . import accounts
    user = _account_call(accounts.change_user, _open(db_path), _actor(), username, role=role,
                         scope=_scopes(scope) if scope else None, unmasked=unmasked,
                         disabled=disabled)
    click.echo(f"{user.username}: {user.role}, scope {' '.join(user.scope) or '-'}")


@users.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the new password from stdin.")
@db_option
def users_passwd(username, password_stdin, db_path):
    """Reset a password; the user's tokens are revoked."""
    from . import accounts
    db = _open(db_path)
    password = _read_password(password_stdin)
    _account_call(accounts.change_user, db, _actor(), username, password=password)
    click.echo(f"{username}: password changed, tokens revoked")


@users.command("unlock")
@click.argument("username")
@db_option
def users_unlock(username, db_path):
    """Forget a user's failed logins: the right password works again at once."""
    from . import accounts
    cleared = _account_call(accounts.unlock, _open(db_path), _actor(), username)
    click.echo(f"{username}: unlocked ({cleared} failed logins forgotten)")


@users.command("revoke")
@click.argument("username")
@db_option
def users_revoke(username, db_path):
    """Revoke every token of a user (e.g. a lost phone)."""
    from . import accounts
    revoked = _account_call(accounts.revoke_tokens, _open(db_path), _actor(), username)
    click.echo(f"{username}: {revoked} tokens revoked")


@main.group()
def keys():
    """OpenRosa keys: server URLs that sign a worker's ODK Collect or KoboCollect in."""


@keys.command("issue")
@click.argument("username")
@click.option("--url", "base_url", required=True, metavar="URL",
              help="The server's address as phones reach it, e.g. https://grid.example.cn")
@click.option("--days", type=click.IntRange(1, 3650), default=365, show_default=True,
              help="How long the key works.")
@click.option("--qr", "qr_path", type=click.Path(dir_okay=False),
              help="Also write the QR code ODK Collect scans (a PNG file).")
@db_option
def keys_issue(username, base_url, days, qr_path, db_path):
    """Issue a key: prints the URL to enter in the app (shown only now)."""
    from . import accounts
    from .openrosa import keys as openrosa_keys
    key, key_id, expires_at = _account_call(accounts.issue_key, _open(db_path), _actor(),
                                            username, days)
    url = openrosa_keys.key_url(base_url, key)
    click.echo(f"{username}: key {key_id}, valid until {expires_at}")
    click.echo(url)
    if qr_path:
        openrosa_keys.qr_png(openrosa_keys.collect_settings(url, f"gridcollect {username}"),
                             qr_path)
        click.echo(f"QR code for ODK Collect: {qr_path}")


@keys.command("list")
@click.argument("username")
@db_option
def keys_list(username, db_path):
    """A user's keys: id, issued, expires, revoked."""
    from . import accounts
    for key in _account_call(accounts.list_keys, _open(db_path), username):
        click.echo(f"{key['key_id']}  issued {key['created_at'][:16]}  expires "
                   f"{key['expires_at'][:10]}"
                   + (f"  revoked {key['revoked_at'][:16]}" if key["revoked_at"] else ""))


@keys.command("revoke")
@click.argument("username")
@click.argument("key_id")
@db_option
def keys_revoke(username, key_id, db_path):
    """Revoke one key (a lost phone); `users revoke` ends all of a user's tokens."""
    from . import accounts
    if not _account_call(accounts.revoke_key, _open(db_path), _actor(), username, key_id):
        raise click.UsageError(f"{username} has no key {key_id} that is not revoked")
    click.echo(f"{username}: key {key_id} revoked")


@main.command()
@click.option("--type", "record_type", required=True,
              type=click.Choice(["person", "house", "organization", "event"]))
@click.option("--grid", "grid_code", required=True, metavar="CODE",
              help="The grid (its overlays apply; its box bounds the location).")
@click.option("--standards", "standards_dir", envvar="GRIDCOLLECT_STANDARDS",
              type=click.Path(file_okay=False),
              help="A field_standards folder (default: the bundled standards).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False),
              help="The .xlsx to write (default: <type>-<grid>.xlsx).")
@click.option("--xform", is_flag=True, help="Write the XForm (XML) phones get instead.")
@db_option
def xlsform(record_type, grid_code, standards_dir, out_path, xform, db_path):
    """Export the effective standard of a grid as the XLSForm (or XForm) that ODK
    Collect, KoboCollect and Enketo get from the server."""
    from . import workflow
    from .openrosa import xforms
    from .openrosa import xlsform as builder
    if not is_grid_code(grid_code):
        raise click.UsageError("--grid must be a 15-digit grid code")
    try:
        standards = load_standards(standards_dir)
    except StandardError as exc:
        raise click.UsageError(str(exc)) from None
    grid = workflow.GridCache().get(_open(db_path), grid_code)
    if grid is None:
        raise click.UsageError(f"no grid {grid_code} in {db_path}")
    workbook = builder.build(standards, record_type, grid)
    suffix = "xml" if xform else "xlsx"
    path = out_path or f"{builder.form_id(record_type, grid_code)}.{suffix}"
    with open(path, "wb") as handle:
        handle.write(xforms.convert(workbook) if xform else builder.to_xlsx(workbook))
    click.echo(f"{path}: {len(workbook['survey'])} questions, {len(workbook['choices'])} "
               f"choices, version {workbook['settings'][0]['version']}")


@main.command()
@db_option
def rebuild(db_path):
    """Re-derive every master record, its history and the monitoring figures from the
    confirmed submissions (one transaction; writers wait meanwhile)."""
    from . import clock, store, workflow
    db = _open(db_path)
    started = time.monotonic()
    counts = workflow.rebuild(db)
    at = clock.iso(clock.now())
    with store.write(db):
        store.audit(db, [(at, _actor(), "rebuild", "records", None, {"counts": counts})])
    for record_type in RECORD_TYPES:
        count = counts.get(record_type, {"active": 0, "retired": 0})
        click.echo(f"{record_type}: {count['active']:,} current, {count['retired']:,} retired")
    click.echo(f"rebuilt in {time.monotonic() - started:.1f} s")


def _user(db, username, roles, what, grid_code):
    """The active user named by option ``what``, holding one of ``roles``, whose scope
    covers ``grid_code``."""
    from . import access, store
    row = store.get_user(db, username)
    if row is None or row["disabled"] or row["role"] not in roles:
        raise click.UsageError(f"{what} must name an active {' or '.join(roles)}: {username}")
    user = access.User.from_row(row)
    if not access.in_scope(user, grid_code):
        raise click.UsageError(f"grid {grid_code} is outside the scope of {username}")
    return user


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--type", "record_type", required=True, type=click.Choice(RECORD_TYPES),
              help="Record type of every row.")
@click.option("--grid", "grid_code", required=True, metavar="CODE",
              help="The grid cell (15 digits) the rows belong to.")
@click.option("--worker", metavar="USER", required=True,
              help="The worker (or admin) the submissions are recorded as sent by.")
@click.option("--confirm-by", metavar="USER",
              help="A supervisor or admin who confirms (and merges) the rows at once.")
@click.option("--standards", "standards_dir", type=click.Path(file_okay=False),
              help="A field_standards folder (default: the bundled standards).")
@rows_option
@db_option
def import_(file, record_type, grid_code, worker, confirm_by, standards_dir, rows, db_path):
    """Import a legacy CSV, XLSX, JSON or JSON Lines FILE as submissions.

    Every row is validated as if a phone had sent it; importing the same file
    again stores nothing twice. Invalid rows are listed in the file's order. The
    columns a release export adds are ignored: the rows' grid is --grid. Exit 0
    when every row was stored, 1 when some were invalid, 2 on a usage or file error.
    """
    from . import legacy
    from .workflow import GridCache
    db = _open(db_path)
    if not is_grid_code(grid_code):
        raise click.UsageError(f"--grid must be a 15-digit grid code, not {grid_code!r}")
    sender = _user(db, worker, ("worker", "admin"), "--worker", grid_code)
    confirmer = None
    if confirm_by is not None:
        confirmer = _user(db, confirm_by, ("supervisor", "admin"), "--confirm-by", grid_code)
    try:
        standards = load_standards(standards_dir)
        summary = legacy.import_file(db, standards, GridCache(), file, record_type, grid_code,
                                     sender, confirmer)
    except (StandardError, FileError) as exc:
        raise click.UsageError(str(exc)) from None
    for row, row_errors in summary.errors:
        for error in row_errors:
            click.echo(printable(f"{file}:{_row(file, row, rows)}: {error['field'] or '-'} "
                                 f"[{error['code']}] "
                                 f"{error['message']}"))
    click.echo(f"{summary.rows} rows: {summary.accepted} accepted, {summary.duplicate} "
               f"already imported, {summary.invalid} invalid, {summary.forbidden} forbidden"
               + (f"; {summary.confirmed} confirmed, {summary.conflict} in conflict"
                  + (f", {summary.awaiting_move} waiting for another grid to agree to a move"
                     if summary.awaiting_move else "") if confirmer else ""))
    sys.exit(1 if summary.invalid or summary.forbidden else 0)


@main.command("backup")
@click.argument("target", metavar="FOLDER", type=click.Path())
@db_option
def backup_(target, db_path):
    """Copy the database, its photos and its releases into the new FOLDER, consistently,
    while the server goes on writing. FOLDER must not exist; missing folders above it
    are created. To restore, serve the copy (`gridcollect serve --db FOLDER/<database
    name>`)."""
    from . import backup
    db = _open(db_path)
    started = time.monotonic()
    try:
        counts = backup.backup(db, db_path, target, _actor())
    except backup.BackupError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"backed up {counts['submissions']:,} submissions, {counts['photos']:,} "
               f"photos, {counts['releases']:,} releases ({counts['bytes']:,} bytes) in "
               f"{time.monotonic() - started:.1f} s; to restore, serve "
               f"{os.path.join(target, os.path.basename(db_path))}")


@main.command()
@click.option("--note", required=True, help="What this release is for.")
@click.option("--standards", "standards_dir", type=click.Path(file_okay=False),
              help="The server's field_standards folder (default: the bundled standards): "
                   "its sensitivities decide the masking of every export.")
@click.option("--release-dir", type=click.Path(file_okay=False),
              help="Where release files go (default: <database>-releases).")
@db_option
def release(note, standards_dir, release_dir, db_path):
    """Snapshot every master table into a new read-only release file."""
    from . import access, releases
    db = _open(db_path)
    try:
        standards = load_standards(standards_dir)
    except StandardError as exc:
        raise click.UsageError(str(exc)) from None
    user = access.User(_actor(), "admin", ())
    for abandoned in releases.fail_abandoned(db, release_dir or releases.release_dir(db_path)):
        click.echo(f"release {abandoned} was not finished (its builder died): failed, its "
                   f"partial file deleted", err=True)
    made = releases.create(db, db_path, standards, user, note, release_dir)
    counts = ", ".join(f"{t} {n:,}" for t, n in made["counts"].items())
    click.echo(f"release {made['id']}: {counts}")
    click.echo(str(releases.file_path(made)))


@main.command("releases")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@db_option
def releases_(output, db_path):
    """List the releases, newest first: id, when, by whom, rows per table, note."""
    from . import store
    db = _open(db_path)
    rows, before = [], None
    while batch := store.list_releases(db, before, 500):
        rows += batch
        before = batch[-1]["id"]
    if output == "json":
        click.echo(json.dumps([{k: r[k] for k in ("id", "created_at", "created_by", "note",
                                                  "counts")} for r in rows],
                              ensure_ascii=False))
        return
    if not rows:
        click.echo("no release yet: make one with `gridcollect release --note ...`")
        return
    click.echo("id\tcreated_at\tcreated_by\trows\tnote")
    for r in rows:
        counts = " ".join(f"{t}={n:,}" for t, n in (r["counts"] or {}).items())
        click.echo(f"{r['id']}\t{r['created_at']}\t{printable(r['created_by'])}\t{counts}\t"
                   f"{printable(r['note'])}")


@main.command()
@click.argument("release_id", metavar="RELEASE")
@click.argument("record_type", type=click.Choice(RECORD_TYPES))
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "xlsx"]), default="csv",
              show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default="-",
              help="File to write (default: stdout).")
@click.option("--labels", is_flag=True, help="Add the meaning of each code column.")
@click.option("--headers", type=click.Choice(["en", "zh"]), default="en", show_default=True,
              help="Column headers: the column names (en), or the data dictionary's "
                   "Chinese labels (zh). Both are read back by validate and import.")
@click.option("--masked", is_flag=True,
              help="Mask personal fields and leave out secret ones, as for an analyst.")
@db_option
def export(release_id, record_type, fmt, output, labels, headers, masked, db_path):
    """Export one table of a release (RELEASE: its id, or `latest`)."""
    from . import access, releases, store
    db = _open(db_path)
    if release_id == "latest":
        found = store.list_releases(db, limit=1)
        if not found:
            raise click.UsageError("there is no release yet: make one with `gridcollect "
                                   "release --note ...`")
        made = found[0]
    else:
        try:
            made = releases.get(db, int(release_id))
        except (ValueError, releases.NotFound):
            raise click.UsageError(f"no such release: {release_id}") from None
    # the operator holds the database file: the whole city, masked only if asked
    user = access.User(_actor(), "analyst", ("",)) if masked else access.User(
        _actor(), "admin", ())
    path = releases.file_path(made)
    if not path.is_file():
        raise click.UsageError(f"release {made['id']}: its file {path} is missing")
    if fmt == "xlsx" and output == "-" and sys.stdout.isatty():
        raise click.UsageError("an XLSX file is binary: write it to a file with -o FILE.xlsx "
                               "(or redirect stdout)")
    chunks = releases.export(db, made, record_type, fmt, user, labels, headers)
    stream = click.open_file(output, "wb")
    with stream:
        for chunk in chunks:
            stream.write(chunk)
