"""Administration of users: list, add, change role, scope or password, revoke tokens,
unlock after failed logins."""
from __future__ import annotations

from flask.views import MethodView

import flask

from .. import accounts
from ..openrosa import keys
from . import ApiError, Blueprint, authenticated, current_user, db, no_content, runtime
from .schemas import (
    IssuedKey,
    KeyList,
    NewKey,
    NewUser,
    Revoked,
    Unlocked,
    User,
    UserChange,
    UserList,
)

blp = Blueprint("users", __name__, url_prefix="/api/v1", description="Users (admin)")


@blp.route("/users")
class Users(MethodView):
    @authenticated("manage_users")
    @blp.response(200, UserList)
    def get(self):
        """Every user."""
        return {"items": accounts.list_users(db()), "next": None}

    @authenticated("manage_users")
    @blp.arguments(NewUser)
    @blp.response(201, User)
    @blp.alt_response(409, schema="Error", description="the username is taken (user_exists)")
    def post(self, new):
        """Add a user."""
        if accounts.get_user(db(), new["username"]) is not None:
            raise ApiError("user_exists", username=new["username"])
        try:
            accounts.add_user(db(), current_user().username, new["username"], new["role"],
                              new["scope"], new["password"], new["unmasked"],
                              runtime().account_settings.scrypt_n)
        except accounts.AccountError as exc:
            raise ApiError("bad_account", detail=str(exc)) from None
        return accounts.get_user(db(), new["username"])


@blp.route("/users/<username>")
class UserResource(MethodView):
    @authenticated("manage_users")
    @blp.response(200, User)
    def get(self, username):
        """One user."""
        row = accounts.get_user(db(), username)
        if row is None:
            raise ApiError("not_found")
        return row

    @authenticated("manage_users")
    @blp.arguments(UserChange)
    @blp.response(200, User)
    def patch(self, change, username):
        """Change role, scope, password, unmasking or disable; a new password or
        disabling revokes the user's tokens."""
        try:
            accounts.change_user(db(), current_user().username, username, **change,
                                 scrypt_n=runtime().account_settings.scrypt_n)
        except LookupError:
            raise ApiError("not_found") from None
        except accounts.AccountError as exc:
            raise ApiError("bad_account", detail=str(exc)) from None
        return accounts.get_user(db(), username)


@blp.route("/users/<username>/revoke-tokens")
class RevokeTokens(MethodView):
    @authenticated("manage_users")
    @blp.response(200, Revoked)
    def post(self, username):
        """Revoke every token of the user (a lost phone)."""
        try:
            return {"revoked": accounts.revoke_tokens(db(), current_user().username, username)}
        except LookupError:
            raise ApiError("not_found") from None


@blp.route("/users/<username>/unlock")
class Unlock(MethodView):
    @authenticated("manage_users")
    @blp.response(200, Unlocked)
    def post(self, username):
        """Forget the user's failed logins: the right password works again at once
        (a worker locked out after mistyping). Audited (``user_unlock``)."""
        try:
            cleared = accounts.unlock(db(), current_user().username, username)
        except LookupError:
            raise ApiError("not_found") from None
        return {"username": username, "failures_cleared": cleared}


@blp.route("/users/<username>/openrosa-keys")
class OpenRosaKeys(MethodView):
    @authenticated("manage_users")
    @blp.response(200, KeyList)
    def get(self, username):
        """The user's OpenRosa keys (URLs that sign ODK Collect in), revoked ones too."""
        try:
            return {"items": accounts.list_keys(db(), username), "next": None}
        except LookupError:
            raise ApiError("not_found") from None

    @authenticated("manage_users")
    @blp.arguments(NewKey)
    @blp.response(201, IssuedKey)
    def post(self, new, username):
        """Issue a key: a server URL for ODK Collect or KoboCollect that needs no password
        (and the settings for its QR code). Shown once; audited (``key_issue``)."""
        try:
            key, key_id, expires_at = accounts.issue_key(db(), current_user().username,
                                                         username, new["days"])
        except LookupError:
            raise ApiError("not_found") from None
        except accounts.AccountError as exc:
            raise ApiError("bad_account", detail=str(exc)) from None
        url = keys.key_url(flask.request.host_url, key)
        return {"key_id": key_id, "expires_at": expires_at, "url": url,
                "collect_settings": keys.collect_settings(url, f"gridcollect {username}")}


@blp.route("/users/<username>/openrosa-keys/<key_id>")
class OpenRosaKey(MethodView):
    @authenticated("manage_users")
    @blp.response(204)
    def delete(self, username, key_id):
        """Revoke one key (a lost phone); audited (``key_revoke``)."""
        try:
            revoked = accounts.revoke_key(db(), current_user().username, username, key_id)
        except LookupError:
            raise ApiError("not_found") from None
        if not revoked:
            raise ApiError("not_found")
        return no_content(204)
