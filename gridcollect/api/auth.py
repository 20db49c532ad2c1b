"""Logging in and out, and who am I."""
from __future__ import annotations

import flask
from flask.views import MethodView

from .. import accounts
from . import ApiError, Blueprint, authenticated, current_user, db, no_content, runtime
from .schemas import Login, Token, User

blp = Blueprint("auth", __name__, url_prefix="/api/v1", description="Log in and out")


@blp.route("/auth/token")
class TokenResource(MethodView):
    @blp.doc(security=[])
    @blp.arguments(Login)
    @blp.response(200, Token)
    @blp.alt_response(401, schema="Error", description="wrong username or password")
    @blp.alt_response(429, schema="Error", description="too many failed logins")
    def post(self, login):
        """Log in: a bearer token for the other endpoints."""
        try:
            token, expires_at, user = accounts.login(
                db(), login["username"], login["password"],
                flask.request.remote_addr or "-", runtime().account_settings)
        except accounts.Throttled as exc:
            raise ApiError("throttled", headers={"Retry-After": str(exc.retry_after)},
                           retry_after=exc.retry_after) from None
        except accounts.BadCredentials:
            raise ApiError("bad_credentials") from None
        return {"token": token, "expires_at": expires_at, "user": user.as_dict()}

    @authenticated()
    @blp.response(204)
    def delete(self):
        """Log out: revoke the token of this request."""
        accounts.logout(db(), flask.g.token, current_user())
        return no_content(204)


@blp.route("/me")
class Me(MethodView):
    @authenticated()
    @blp.response(200, User)
    def get(self):
        """The caller."""
        return current_user().as_dict()
