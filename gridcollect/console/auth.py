"""Signing in and out, and the first page of each role."""
from __future__ import annotations

import flask

from .. import accounts
from . import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    blp,
    check_csrf,
    clock_seconds,
    db,
    page,
    render,
    runtime,
    t,
    user,
)

# the first page of each role
HOME = {"supervisor": "console.queue", "admin": "console.queue",
        "analyst": "console.releases_page", "worker": "console.records_page"}


def _safe_next(target: str | None) -> str | None:
    """Only a path of this console: never another site (an open redirect)."""
    if target and target.startswith("/console/") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return None


@blp.route("/login", methods=["GET", "POST"])
def login():
    message, status, retry_after = None, 200, None
    if flask.request.args.get("expired"):
        message = t("login.expired")
    if flask.request.args.get("signed_out"):
        message = t("login.signed_out")
    username = ""
    if flask.request.method == "POST":
        check_csrf()
        username = flask.request.form.get("username", "").strip()
        password = flask.request.form.get("password", "")
        try:
            token, expires_at, found = accounts.login(
                db(), username, password, flask.request.remote_addr or "-",
                runtime().account_settings)
        except accounts.Throttled as exc:
            retry_after = exc.retry_after
            message, status = t("login.throttled", seconds=retry_after), 429
        except accounts.BadCredentials:
            message, status = t("login.bad"), 401
        else:
            target = _safe_next(flask.request.form.get("next")) or flask.url_for(
                HOME[found.role])
            response = flask.redirect(target, 303)
            response.set_cookie(SESSION_COOKIE, token, max_age=clock_seconds(expires_at),
                                httponly=True, samesite="Strict",
                                secure=flask.request.is_secure, path="/console")
            response.delete_cookie(LOGIN_COOKIE, path="/console")
            return response
    response = render("console/login.html", status=status, message=message,
                      username=username, next=_safe_next(flask.request.values.get("next")))
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@blp.route("/logout", methods=["POST"])
@page()
def logout():
    accounts.logout(db(), flask.g.console_token, user())
    response = flask.redirect(flask.url_for("console.login", signed_out=1), 303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


@blp.route("/")
@page()
def home():
    return flask.redirect(flask.url_for(HOME[user().role]))
