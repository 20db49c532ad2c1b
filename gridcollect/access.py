"""Roles and scope: who may do what, on which grids. The one place it is decided.

A user's scope is a list of grid-code prefixes (6, 9, 12 or 15 digits). An
admin sees everything. Anything outside a caller's scope is answered exactly
like something that does not exist, so scope cannot be probed.
"""
from __future__ import annotations

from dataclasses import dataclass

ROLES = ("worker", "supervisor", "analyst", "admin")

# permission -> roles that hold it
PERMISSIONS = {
    "read_grids": {"worker", "supervisor", "analyst", "admin"},
    "submit": {"worker", "admin"},
    "attach_photo": {"worker", "admin"},
    "read_submissions": {"worker", "supervisor", "admin"},
    "review": {"supervisor", "admin"},
    "read_audit": {"admin"},
    "manage_users": {"admin"},
}


@dataclass(frozen=True)
class User:
    username: str
    role: str
    scope: tuple
    unmasked: bool = False

    @classmethod
    def from_row(cls, row: dict) -> User:
        return cls(row["username"], row["role"], tuple(row["scope"]), row["unmasked"])

    def as_dict(self) -> dict:
        return {"username": self.username, "role": self.role, "scope": list(self.scope),
                "unmasked": self.unmasked}


def allowed(user: User, permission: str) -> bool:
    return user.role in PERMISSIONS[permission]


def prefixes(user: User):
    """The grid prefixes the user may see; None means every grid."""
    return None if user.role == "admin" else user.scope


def in_scope(user: User, grid_code: str) -> bool:
    scope = prefixes(user)
    return scope is None or any(grid_code.startswith(p) for p in scope)


def may_read_submission(user: User, submission: dict) -> bool:
    """Workers read their own submissions; supervisors those of their grids."""
    if not allowed(user, "read_submissions"):
        return False
    if user.role == "worker":  # its own, whatever its scope is now
        return submission["worker"] == user.username
    return in_scope(user, submission["grid_code"])


def submission_filter(user: User) -> tuple:
    """``(grid prefixes or None, worker or None)`` limiting a listing of submissions,
    the same rule as ``may_read_submission``."""
    if user.role == "worker":
        return None, user.username  # its own, whatever its scope is now
    return prefixes(user), None


def may_review(user: User, submission: dict) -> bool:
    return allowed(user, "review") and in_scope(user, submission["grid_code"])
