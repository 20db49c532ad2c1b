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
    "read_records": {"worker", "supervisor", "analyst", "admin"},
    "monitor": {"supervisor", "admin"},
    "read_releases": {"analyst", "admin"},
    "create_release": {"analyst", "admin"},
    "manage_grids": {"admin"},
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


def may_decide_move(user: User, move: dict) -> bool:
    """Accepting or refusing a move is for whoever oversees the grid the record is in."""
    return allowed(user, "review") and in_scope(user, move["from_grid"])


def may_read_record(user: User, record: dict) -> bool:
    return allowed(user, "read_records") and in_scope(user, record["grid_code"])


# --- masking (SPEC.md section 4) ---------------------------------------------------

CLEAR, MASK, OMIT = "clear", "mask", "omit"


def field_view(user: User, sensitivity: str) -> str:
    """How a field of that sensitivity reaches the user.

    Workers and supervisors collect and confirm personal data, and see it; an
    analyst sees personal fields masked unless granted ``unmasked``, and never
    sees secret ones (an unmasked grant is for personal data, not secret).
    """
    if sensitivity in ("public", "internal") or user.role != "analyst":
        return CLEAR
    if sensitivity == "personal":
        return CLEAR if user.unmasked else MASK
    return OMIT


def mask_kind(spec) -> str:
    """How a personal field is masked: ID numbers and phones keep their ends, names
    their first character; anything else is starred out."""
    if "gb11643" in spec.checks:
        return "id_number"
    if {"mobile", "phone"} & set(spec.checks):
        return "phone"
    if spec.name == "name" or spec.name.endswith("_name"):
        return "name"
    return "other"


def mask(kind: str, value):
    """``420502********1234``, ``138****5678``, ``张*`` (whatever the name's length),
    anything else ``***`` (its length is not shown either); None stays None."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if kind == "id_number" and len(text) > 10:
        return text[:6] + "*" * (len(text) - 10) + text[-4:]
    if kind == "phone" and len(text) > 7:
        return text[:3] + "*" * (len(text) - 7) + text[-4:]
    if kind == "name" and text:
        return text[0] + "*"
    return "***"


@dataclass(frozen=True)
class Masking:
    """What one user sees of one standard's fields: ``plan`` maps a field to its mask
    kind, or to None when the field is left out; a field the standard does not
    know (a standard changed since) is left out for users who do not see secrets."""

    plan: dict
    drop_unknown: bool
    known: frozenset

    @property
    def clear(self) -> bool:
        return not self.plan and not self.drop_unknown

    def view(self, name: str) -> str:
        if name not in self.known:
            return OMIT if self.drop_unknown else CLEAR
        if name not in self.plan:
            return CLEAR
        return OMIT if self.plan[name] is None else MASK

    def apply(self, data: dict) -> dict:
        if self.clear:
            return data
        out = {}
        for name, value in data.items():
            if name in self.plan:
                kind = self.plan[name]
                if kind is None:
                    continue
                value = mask(kind, value)
            elif self.drop_unknown and name not in self.known:
                continue
            out[name] = value
        return out


def masking(user: User, fields: dict) -> Masking:
    """The masking of ``fields`` (name -> FieldSpec, or anything with ``sensitivity``,
    ``name`` and ``checks``) for this user."""
    plan = {}
    for name, spec in fields.items():
        view = field_view(user, spec.sensitivity)
        if view == MASK:
            plan[name] = mask_kind(spec)
        elif view == OMIT:
            plan[name] = None
    return Masking(plan, field_view(user, "secret") != CLEAR, frozenset(fields))
