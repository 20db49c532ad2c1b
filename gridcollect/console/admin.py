"""Administration (admins): users, grids, the effective standard of a grid, the audit
log."""
from __future__ import annotations

import os
import tempfile

import flask
from markupsafe import Markup

from .. import accounts, clock, workflow
from ..access import ROLES
from ..grids import GridFileError, is_grid_code, is_prefix, read_geojson
from ..openrosa import keys as openrosa_keys
from ..standards import RECORD_TYPES
from . import PageError, blp, clean, db, page, render, row_id, runtime, t, user, with_args
from .values import label

ROWS = 100


def _scope(text: str) -> list:
    return clean(text).replace(",", " ").replace("，", " ").split()


@blp.route("/admin/users", methods=["GET", "POST"])
@page("manage_users")
def users():
    message, problem, status = None, None, 200
    form = flask.request.form
    if flask.request.method == "POST":
        username = clean(form.get("username"))
        try:
            if accounts.get_user(db(), username) is not None:
                raise accounts.AccountError(t("users.exists"))
            accounts.add_user(db(), user().username, username, form.get("role", ""),
                              _scope(form.get("scope")), form.get("password", ""),
                              form.get("unmasked") == "1",
                              runtime().account_settings.scrypt_n)
        except accounts.AccountError as exc:
            problem, status = str(exc), 400
        else:
            return flask.redirect(flask.url_for("console.user_page", username=username,
                                                done="added"), 303)
    return render("console/users.html", rows=accounts.list_users(db()), roles=ROLES,
                  message=message, problem=problem, form=form, status=status)


def _user(username):
    found = accounts.get_user(db(), username)
    if found is None:
        raise PageError(404)
    return found


@blp.route("/admin/users/<username>", methods=["GET", "POST"])
@page("manage_users")
def user_page(username):
    found = _user(username)
    problem, done, status = None, flask.request.args.get("done"), 200
    if flask.request.method == "POST":
        form, actor = flask.request.form, user().username
        what = form.get("do")
        try:
            if what == "change":
                accounts.change_user(db(), actor, username, role=form.get("role"),
                                     scope=_scope(form.get("scope")),
                                     unmasked=form.get("unmasked") == "1",
                                     disabled=form.get("disabled") == "1",
                                     scrypt_n=runtime().account_settings.scrypt_n)
                done = "changed"
            elif what == "password":
                accounts.change_user(db(), actor, username, password=form.get("password", ""),
                                     scrypt_n=runtime().account_settings.scrypt_n)
                done = "password"
            elif what == "revoke":
                done = f"revoked:{accounts.revoke_tokens(db(), actor, username)}"
            elif what == "unlock":
                done = f"unlocked:{accounts.unlock(db(), actor, username)}"
            elif what == "key":  # shown once, on this answer: no redirect that would lose it
                key, key_id, expires_at = accounts.issue_key(db(), actor, username)
                url = openrosa_keys.key_url(flask.request.host_url, key)
                payload = openrosa_keys.collect_settings(url, f"gridcollect {username}")
                return render("console/user.html", u=found, roles=ROLES, problem=None,
                              done=None, status=200, keys=accounts.list_keys(db(), username),
                              issued={"url": url, "key_id": key_id, "expires_at": expires_at,
                                      "qr": Markup(openrosa_keys.qr_svg(payload))})
            elif what == "revoke_key":
                accounts.revoke_key(db(), actor, username, form.get("key_id", ""))
                done = "key_revoked"
            else:
                raise PageError(400)
        except accounts.AccountError as exc:
            problem, status = str(exc), 400
        except LookupError:
            raise PageError(404) from None
        else:
            return flask.redirect(flask.url_for("console.user_page", username=username,
                                                done=done), 303)
    return render("console/user.html", u=found, roles=ROLES, problem=problem,
                  done=done, status=status, keys=accounts.list_keys(db(), username),
                  issued=None)


@blp.route("/admin/grids", methods=["GET", "POST"])
@page("manage_grids")
def grids():
    problems, imported, status = [], None, 200
    if flask.request.method == "POST":
        upload = flask.request.files.get("geojson")
        if upload is None or not upload.filename:
            problems, status = [t("grids.no_file")], 400
        else:
            name = os.path.basename(upload.filename)
            with tempfile.NamedTemporaryFile(suffix=".geojson") as handle:
                upload.save(handle)
                handle.flush()
                try:
                    cells, area_names = read_geojson(handle.name, name=name)
                except GridFileError as exc:
                    problems, status = str(exc).splitlines(), 400
                else:
                    imported = workflow.import_grids(db(), user().username, cells,
                                                     area_names, name)
    under = clean(flask.request.args.get("under"))
    after = flask.request.args.get("after")
    rows = workflow.list_grids(db(), user(), under=under if is_prefix(under) else None,
                               after=after if is_grid_code(after) else None,
                               limit=ROWS + 1)
    more = len(rows) > ROWS
    rows = rows[:ROWS]
    return render("console/grids.html", rows=rows, problems=problems, imported=imported,
                  under=under, next_after=rows[-1]["code"] if more else None, status=status)


@blp.route("/admin/standards")
@page("manage_grids")
def standards():
    rt = runtime()
    grid = clean(flask.request.args.get("grid"))
    if grid and not is_prefix(grid):
        raise PageError(404)
    shown = []
    for record_type in RECORD_TYPES:
        standard = rt.standards.effective(record_type, grid or None)
        shown.append({"record_type": record_type, "version": standard.version,
                      "overlays": list(standard.source[2]),
                      "fields": [{"name": spec.name, "label": label(spec, spec.name),
                                  "spec": spec, "table": rt.standards.code_tables.get(
                                      spec.code_table) if spec.code_table else None,
                                  "rules": {k: v for k, v in spec.rules.items()
                                            if k != "allowed" or not spec.code_table}}
                                 for spec in standard.fields.values()]})
    return render("console/standards.html", grid=grid, shown=shown)


AUDIT_FILTERS = ("actor", "action", "object_type", "object_id")


@blp.route("/admin/audit")
@page("read_audit")
def audit():
    args = flask.request.args
    filters = {k: clean(args.get(k)) for k in AUDIT_FILTERS if clean(args.get(k))}
    since = clean(args.get("since"))
    problem = None
    if since:
        try:
            filters["since"] = clock.canonical(since)
        except ValueError:
            problem = "since"
    rows = workflow.audit_log(db(), before_id=row_id(args.get("before")), limit=ROWS + 1,
                              **filters) if problem is None else []
    more = len(rows) > ROWS
    rows = rows[:ROWS]
    return render("console/audit.html", rows=rows, problem=problem, since=since,
                  next_url=with_args(flask.request.full_path, before=rows[-1]["id"])
                  if more else None)
