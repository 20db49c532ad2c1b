"""The console: server-rendered pages for supervisors, analysts and admins.

Another door onto the same domain as the JSON API: pages call ``workflow``,
``records``, ``monitor``, ``releases`` and ``accounts``, never ``store``. A
session is an API token kept in an HttpOnly, SameSite=Strict cookie, so signing
in is throttled and audited exactly as ``POST /auth/token`` is, and revoking a
user's tokens ends their console sessions too. Every change is a POST carrying a
CSRF token derived from the session (HMAC-SHA256 of it): a page of another site
can neither read it nor make it. No inline script anywhere: the CSP forbids it,
so a stored value can never run.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import unicodedata
import urllib.parse

import flask
from werkzeug.exceptions import HTTPException

from .. import access, accounts, clock
from . import i18n, pictures

SESSION_COOKIE = "gc_session"
LANG_COOKIE = "gc_lang"
LOGIN_COOKIE = "gc_login"  # double-submit token of the sign-in form (no session yet)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")

blp = flask.Blueprint("console", __name__, url_prefix="/console",
                      template_folder="templates", static_folder="static",
                      static_url_path="/static")


class PageError(Exception):
    """A console refusal: its status and the catalogue key of its message."""

    def __init__(self, status: int, key: str | None = None):
        super().__init__(status)
        self.status, self.key = status, key or f"error.{status}"


class SignInNeeded(Exception):
    pass


# --- per request ------------------------------------------------------------------

def runtime():
    return flask.current_app.extensions["gridcollect"]


def db():
    return runtime().db()


def lang() -> str:
    g = flask.g
    if "lang" not in g:
        g.lang = i18n.choose(flask.request.args.get("lang"),
                             flask.request.cookies.get(LANG_COOKIE),
                             flask.request.accept_languages)
    return g.lang


def t(key: str, **values) -> str:
    return i18n.translate(lang(), key, **values)


def user() -> access.User | None:
    return flask.g.get("console_user")


def csrf_token() -> str:
    token = flask.g.get("console_token")
    if token is None:  # the sign-in form
        return flask.g.setdefault("login_csrf", flask.request.cookies.get(LOGIN_COOKIE)
                                  or secrets.token_urlsafe(24))
    return hmac.new(token.encode(), b"gridcollect console csrf", hashlib.sha256).hexdigest()


def check_csrf():
    sent = flask.request.form.get("csrf", "")
    if flask.g.get("console_token") is None:
        expected = flask.request.cookies.get(LOGIN_COOKIE, "")
    else:
        expected = csrf_token()
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PageError(403, "error.csrf")
    origin = flask.request.headers.get("Origin")
    if origin and origin != "null" and origin != flask.request.host_url.rstrip("/"):
        raise PageError(403, "error.csrf")


def page(permission: str | None = None):
    """A page for a signed-in user whose role holds ``permission``; POSTs need the
    CSRF token."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            token = flask.request.cookies.get(SESSION_COOKIE, "")
            found = accounts.authenticate(db(), token) if token else None
            if found is None:
                raise SignInNeeded()
            flask.g.console_user, flask.g.console_token = found, token
            if permission is not None and not access.allowed(found, permission):
                raise PageError(403)
            if flask.request.method == "POST":
                check_csrf()
            return view(*args, **kwargs)

        wrapper._permission = permission  # read by the authorization tests
        return wrapper

    return decorate


def clock_seconds(expires_at: str) -> int:
    """Seconds from now until a stored time (a session cookie lives as long as its token)."""
    return max(0, int((clock.parse(expires_at) - clock.now()).total_seconds()))


def render(template: str, status: int = 200, **context):
    context.setdefault("status_code", status)
    return flask.make_response(flask.render_template(template, **context), status)


def with_args(url: str, **changes) -> str:
    """A path of this site with some query arguments changed (None drops one)."""
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
             if k not in changes]
    query += [(k, str(v)) for k, v in changes.items() if v is not None]
    encoded = urllib.parse.urlencode(query)
    return parts.path + ("?" + encoded if encoded else "")


def url_with(**changes) -> str:
    """This page's URL with some query arguments changed."""
    return with_args(flask.request.full_path, **changes)


def row_id(text) -> int | None:
    """A row id given as ASCII digits; None for anything else."""
    return int(text) if text and text.isascii() and text.isdigit() and len(text) < 19 \
        else None


def clean(text: str | None) -> str:
    """A filter as typed: full-width digits and stray spaces are what a phone or an
    input method gives, and mean the same."""
    return unicodedata.normalize("NFKC", text or "").strip()



def may(permission: str) -> bool:
    current = user()
    return current is not None and access.allowed(current, permission)


@blp.app_template_filter("part")
def _part(message):
    return i18n.part(lang(), message)


@blp.app_context_processor
def _globals():
    return {"t": t, "lang": lang, "html_lang": i18n.HTML_LANG[lang()], "user": user(),
            "csrf_token": csrf_token, "url_with": url_with, "may": may,
            "cells_svg": pictures.cells_svg, "catalogue": i18n.CATALOGUE}


@blp.after_request
def _headers(response):
    response.headers["Content-Security-Policy"] = CSP
    response.headers.setdefault("Cache-Control", "no-store")
    wanted = flask.request.args.get("lang")
    if wanted in i18n.LANGUAGES and flask.request.cookies.get(LANG_COOKIE) != wanted:
        response.set_cookie(LANG_COOKIE, wanted, max_age=365 * 86400, samesite="Strict",
                            httponly=True, secure=flask.request.is_secure,
                            path="/console")
    if "login_csrf" in flask.g and flask.request.cookies.get(LOGIN_COOKIE) != flask.g.login_csrf:
        response.set_cookie(LOGIN_COOKIE, flask.g.login_csrf, samesite="Strict",
                            httponly=True, secure=flask.request.is_secure, path="/console")
    return response


# --- errors -------------------------------------------------------------------------

def error_page(status: int, key: str | None = None):
    """The console's answer for a refusal: a page in the user's language."""
    key = key or f"error.{status}"
    return render("console/error.html", status=status, status_code=status,
                  message=t(key if key in i18n.CATALOGUE else "error.400"))


@blp.errorhandler(PageError)
def _page_error(exc: PageError):
    return error_page(exc.status, exc.key)


@blp.errorhandler(SignInNeeded)
def _sign_in(exc):
    target = flask.request.full_path.rstrip("?") if flask.request.method == "GET" else ""
    response = flask.redirect(flask.url_for("console.login", next=target or None,
                                            expired=1 if flask.request.cookies.get(
                                                SESSION_COOKIE) else None))
    if flask.request.cookies.get(SESSION_COOKIE):
        response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


def handles(path: str) -> bool:
    """Whether an error on this path is answered with a console page."""
    return path == "/console" or path.startswith("/console/")


def http_error(exc: HTTPException):
    status = exc.code or 500
    return error_page(status if status in (400, 403, 404, 405, 413, 503) else 400)


from . import admin, auth, monitor, records, releases, review  # noqa: E402,F401  (routes)
