"""The refusals every operation can answer, written into the OpenAPI document.

Derived from the code, not listed by hand: an operation behind ``authenticated``
can answer 401, and 403 when its permission is not every role's; one with a
path parameter 404 (missing or out of scope: the same answer); one with a JSON
body 400, 413 and 415; one with a ``cursor`` 400.
"""
from __future__ import annotations

from apispec import BasePlugin

from ..access import PERMISSIONS, ROLES

ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _refusal(description: str) -> dict:
    return {"description": description, "content": ERROR}


class RefusalsPlugin(BasePlugin):
    def __init__(self, app):
        self.app = app

    def operation_helper(self, path=None, operations=None, **kwargs):
        rule = kwargs.get("rule")
        if rule is None or operations is None:
            return
        view_class = getattr(self.app.view_functions.get(rule.endpoint), "view_class", None)
        for method, operation in operations.items():
            view = getattr(view_class, method, None)
            responses = operation.setdefault("responses", {})
            for status, description in _refusals(view, rule, operation):
                responses.setdefault(status, _refusal(description))


def _refusals(view, rule, operation):
    if hasattr(view, "_permission"):
        yield "401", "no token, or it expired or was revoked (auth_required, token_invalid)"
        permission = view._permission
        if permission is not None and set(PERMISSIONS[permission]) != set(ROLES):
            yield "403", "the caller's role may not do this (role_forbidden)"
    if rule.arguments:
        yield "404", "no such object, or outside the caller's scope (not_found)"
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        yield "400", "the body is not JSON in UTF-8 (bad_json)"
        yield "413", "the body is too large (too_large)"
        yield "415", "the body is not application/json (unsupported_media_type)"
    if any(p.get("name") == "cursor" for p in operation.get("parameters", [])):
        yield "400", "the cursor was not made by this server (bad_cursor)"
