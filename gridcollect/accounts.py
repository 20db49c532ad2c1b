"""Users, passwords and tokens: slow password hashes, random tokens stored hashed,
expiry and revocation, and throttling of repeated failed logins.
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import re
import secrets
import threading
import time
import unicodedata
from dataclasses import dataclass

from . import clock, logs, store
from .access import ROLES, User
from .grids import is_prefix

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}\Z")
MIN_PASSWORD = 8  # characters that are not blank
MIN_DISTINCT = 4  # different characters: not "aaaaaaaa" or "12121212"
# what people choose first (and what wordlists try first), compared case-folded
COMMON_PASSWORDS = frozenset("""
    password password1 password123 passw0rd p@ssw0rd 12345678 123456789 1234567890
    87654321 11111111 00000000 88888888 66666666 12341234 11223344 123123123 qwertyui
    qwerty123 1qaz2wsx 1q2w3e4r qazwsxedc asdfghjk zxcvbnm123 abcd1234 a1b2c3d4 abc12345
    abcdefgh iloveyou woaini1314 woaini520 5201314520 admin123 admin1234 administrator
    root1234 welcome1 changeme letmein1 gridcollect wanggeyuan qq123456 a1234567
    a12345678 a123456789 aa123456 123456aa 123456abc abc123456 147258369 987654321
    123qweasd qweasdzxc qwertyuiop 1qaz2wsx3edc 1234qwer q1w2e3r4 zxcvbnm asdf1234
    asdfghjkl 110110110 12344321 13141314 520520520 woaini123 iloveyou1 password12
    superman dragon123 monkey123 sunshine football baseball trustno1 master123
""".split())


@dataclass(frozen=True)
class Settings:
    token_ttl: datetime.timedelta = datetime.timedelta(days=7)  # phones work offline for days
    scrypt_n: int = 2 ** 15  # about 32 MB and 50-100 ms per hash
    max_failures: int = 5  # per username, within the window
    max_failures_per_address: int = 30
    failure_window: datetime.timedelta = datetime.timedelta(minutes=15)


class AccountError(ValueError):
    """A user cannot be created or changed as asked; the message says why."""


class BadCredentials(Exception):
    pass


class Throttled(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"too many failed logins; retry after {retry_after} s")
        self.retry_after = retry_after


# --- passwords and tokens ----------------------------------------------------------

def hash_password(password: str, n: int = Settings.scrypt_n) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=8, p=1, maxmem=2 ** 27)
    return f"scrypt${n}$8$1${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        computed = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n),
                                  r=int(r), p=int(p), maxmem=2 ** 27)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed.hex(), digest)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


# A user that does not exist still costs one hash: timing does not tell.
_DUMMY_HASH = None


def _dummy_hash(n):
    global _DUMMY_HASH
    if _DUMMY_HASH is None or _DUMMY_HASH.split("$")[1] != str(n):
        _DUMMY_HASH = hash_password(secrets.token_hex(8), n)
    return _DUMMY_HASH


# --- logging in --------------------------------------------------------------------

def login(db, username: str, password: str, address: str, settings: Settings,
          issue_token: bool = True) -> tuple:
    """``(token, expires_at, User)``; raises Throttled or BadCredentials. Without
    ``issue_token`` (HTTP Basic, ``verify``) the token and its expiry are None.

    An attempt is counted, in flight, in the transaction that checks the limits,
    before its (slow) password hash is computed: parallel guesses cannot slip
    past the limit. Attempts in flight that fill what is left of a limit get a
    429 to retry in a second; finished failures that reach it, for the rest of
    the window (audited once per window and key, so a flood of refused
    attempts cannot flood the audit log). A token is issued only if the
    password and the account are still what was checked.
    """
    now = clock.now()
    at, since = clock.iso(now), clock.iso(now - settings.failure_window)
    name = logs.printable(username[:64])  # audited as typed, but unable to fake a name
    keys = {f"user:{name}": settings.max_failures,
            f"addr:{address}": settings.max_failures_per_address}
    throttled = _throttled(db, now, settings.failure_window, keys)  # read only: no write lock
    if throttled is None:
        with store.write(db):
            throttled = _throttled(db, now, settings.failure_window, keys)
            if throttled is None:
                reserved = store.add_login_attempt(db, list(keys), at, since)
    if throttled is not None:
        key, retry_after, window = throttled
        if window and not store.throttle_audited(db, key, since):
            with store.write(db):
                if not store.throttle_audited(db, key, since):
                    store.audit(db, [(at, name, "login_throttled", "login", key,
                                      {"address": address, "retry_after": retry_after})])
        raise Throttled(retry_after)
    row = store.get_user(db, username) if USERNAME.match(username) else None
    if row is None:
        verify_password(password, _dummy_hash(settings.scrypt_n))
    if row is None or not verify_password(password, row["password_hash"]) or row["disabled"]:
        raise _failure(db, at, name, address, reserved)
    with store.write(db):
        current = store.get_user(db, username)
        unchanged = current is not None and not current["disabled"] \
            and current["password_hash"] == row["password_hash"]
        if unchanged:
            store.delete_login_attempt(db, reserved)
            store.clear_login_failures(db, f"user:{name}")
            token = expires_at = None
            if issue_token:
                token = secrets.token_urlsafe(32)
                expires_at = clock.iso(now + settings.token_ttl)
                store.insert_token(db, token_hash(token), username, at, expires_at)
            store.audit(db, [(at, username, "login", "user", username, {"address": address}
                              if issue_token else {"address": address, "via": "basic"})])
    if not unchanged:  # the password or the account changed while the hash was computed
        raise _failure(db, at, name, address, reserved)
    return token, expires_at, User.from_row(current)


class _Recent:
    """Basic passwords checked recently, so that a phone's dozen requests of one sync
    cost one slow hash: keyed by a digest of the name, the password and the stored
    hash (a new password misses); the user is read again each time (a disabled one is
    refused at once)."""

    TTL = 300.0  # seconds

    def __init__(self):
        self._seen, self._lock = {}, threading.Lock()

    @staticmethod
    def key(username, password, stored_hash) -> str:
        return hashlib.sha256("\0".join((username, password, stored_hash)).encode()
                              ).hexdigest()

    def fresh(self, key) -> bool:
        with self._lock:
            seen = self._seen.get(key)
        return seen is not None and time.monotonic() - seen < self.TTL

    def remember(self, key):
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen.clear()
            self._seen[key] = time.monotonic()


_recent = _Recent()


def verify(db, username: str, password: str, address: str, settings: Settings) -> User:
    """The user of a username and password sent with each request (HTTP Basic, as ODK
    Collect signs in): checked, throttled and audited as ``login`` is, no token."""
    row = store.get_user(db, username) if USERNAME.match(username or "") else None
    key = _Recent.key(username, password, row["password_hash"]) if row else None
    if row is not None and not row["disabled"] and _recent.fresh(key):
        return User.from_row(row)
    _, _, user = login(db, username, password, address, settings, issue_token=False)
    if key is not None:
        _recent.remember(key)
    return user


# --- keys: a URL that signs a phone in -----------------------------------------------

KEY_KIND = "openrosa"


def issue_key(db, actor: str, username: str, days: int = 365) -> tuple:
    """``(key, key id, expires_at)``: a token for an OpenRosa key URL
    (``/openrosa/key/<key>``), which a QR code puts into ODK Collect. Revoked like any
    token (``revoke_key``, or all of the user's with ``revoke_tokens``)."""
    now = clock.now()
    at, expires_at = clock.iso(now), clock.iso(now + datetime.timedelta(days=days))
    key = secrets.token_urlsafe(32)
    digest = token_hash(key)
    with store.write(db):
        row = store.get_user(db, username)
        if row is None:
            raise LookupError(username)
        if row["role"] != "worker":  # a QR code photographed: at most one worker's grids
            raise AccountError(f"keys are for workers, not a {row['role']}")
        store.insert_token(db, digest, username, at, expires_at, kind=KEY_KIND)
        store.audit(db, [(at, actor, "key_issue", "user", username,
                          {"key_id": digest[:KEY_ID], "expires_at": expires_at})])
    return key, digest[:KEY_ID], expires_at


KEY_ID = 12  # hex characters of the key's hash that name it


def list_keys(db, username: str) -> list:
    if store.get_user(db, username) is None:
        raise LookupError(username)
    return [{"key_id": row["token_hash"][:KEY_ID], "created_at": row["created_at"],
             "expires_at": row["expires_at"], "revoked_at": row["revoked_at"]}
            for row in store.list_tokens(db, username, KEY_KIND)]


def revoke_key(db, actor: str, username: str, key_id: str) -> bool:
    """False when the user has no such key (or it was revoked already)."""
    at = clock.iso(clock.now())
    if not re.fullmatch(f"[0-9a-f]{{{KEY_ID}}}", key_id or ""):
        key_id = ""  # no key has it: nothing is revoked, and the LIKE below sees no wildcard
    with store.write(db):
        if store.get_user(db, username) is None:
            raise LookupError(username)
        revoked = key_id and store.revoke_token_by_prefix(db, username, KEY_KIND, key_id, at)
        if revoked:
            store.audit(db, [(at, actor, "key_revoke", "user", username, {"key_id": key_id})])
    return bool(revoked)


def _failure(db, at, name, address, reserved) -> BadCredentials:
    with store.write(db):
        store.fail_login_attempt(db, reserved)
        store.audit(db, [(at, name, "login_failed", "user", name, {"address": address})])
    return BadCredentials()


ATTEMPT_STALE = datetime.timedelta(minutes=1)  # an attempt in flight longer crashed: a failure


def _throttled(db, now, window, limits: dict):
    """``(key, seconds to wait, whether for the window)``, or None to go ahead."""
    since, stale_before = clock.iso(now - window), clock.iso(now - ATTEMPT_STALE)
    for key, limit in limits.items():
        failed, earliest, in_flight = store.login_failures(db, key, since, stale_before)
        if failed >= limit:
            unlock = clock.parse(earliest) + window
            return key, max(1, int((unlock - now).total_seconds()) + 1), True
        if failed + in_flight >= limit:
            return key, 1, False
    return None


def authenticate(db, token: str, kind: str = "session") -> User | None:
    """The user of a token of that kind: a session (API bearer, console cookie) is never
    an OpenRosa key, nor a key a session (a key is printed on a QR code for a year)."""
    row = store.user_by_token(db, token_hash(token), clock.iso(clock.now()), kind)
    return None if row is None else User.from_row(row)


def logout(db, token: str, user: User):
    at = clock.iso(clock.now())
    with store.write(db):
        store.revoke_token(db, token_hash(token), at)
        store.audit(db, [(at, user.username, "logout", "user", user.username, None)])


# --- administration ----------------------------------------------------------------

PUBLIC_FIELDS = ("username", "role", "scope", "unmasked", "disabled")


def list_users(db) -> list:
    """Every user, as administrators see them (no password hash)."""
    return [{k: row[k] for k in PUBLIC_FIELDS} for row in store.list_users(db)]


def get_user(db, username: str) -> dict | None:
    row = store.get_user(db, username)
    return None if row is None else {k: row[k] for k in PUBLIC_FIELDS}


def check_role_and_scope(role: str, scope) -> tuple:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    scope = tuple(scope)
    for prefix in scope:
        if not is_prefix(prefix):
            raise AccountError(f"scope {prefix!r} is not a grid code prefix of 6, 9, 12 or "
                               f"15 digits")
    if role in ("worker", "supervisor") and not scope:
        raise AccountError(f"a {role} needs at least one scope prefix")
    return scope


def check_password(password: str, username: str):
    """A password someone could not guess first: enough non-blank characters, several
    different ones, not the username, not one of the most common choices."""
    solid = "".join(unicodedata.normalize("NFKC", password).split())  # １ is 1
    if len(solid) < MIN_PASSWORD:
        raise AccountError(f"password must have at least {MIN_PASSWORD} characters that are "
                           f"not spaces")
    if len(set(solid)) < MIN_DISTINCT:
        raise AccountError(f"password must have at least {MIN_DISTINCT} different characters")
    folded = solid.casefold()
    name = "".join(username.split()).casefold()
    if folded == name or (len(name) >= 3 and folded.strip("0123456789!@#._-") == name):
        raise AccountError("password must not be the username (with or without digits)")
    if folded in COMMON_PASSWORDS:
        raise AccountError("password is one of the most common passwords: choose another")


def add_user(db, actor: str, username: str, role: str, scope, password: str,
             unmasked: bool = False, scrypt_n: int = Settings.scrypt_n) -> User:
    if not USERNAME.match(username or ""):
        raise AccountError("username must be 1-64 letters, digits, '.', '_' or '-',"
                           " starting with a letter or digit")
    scope = check_role_and_scope(role, scope)
    check_password(password, username)
    password_hash = hash_password(password, scrypt_n)
    at = clock.iso(clock.now())
    with store.write(db):
        if store.get_user(db, username) is not None:
            raise AccountError(f"user {username} already exists")
        store.insert_user(db, username, role, scope, password_hash, unmasked, at)
        store.audit(db, [(at, actor, "user_add", "user", username,
                          {"role": role, "scope": list(scope), "unmasked": unmasked})])
    return User(username, role, scope, unmasked)


def change_user(db, actor: str, username: str, *, role=None, scope=None, password=None,
                unmasked=None, disabled=None, scrypt_n: int = Settings.scrypt_n) -> User:
    """Change what is given; a new password or disabling revokes the user's tokens."""
    if password is not None:
        check_password(password, username)
        password_hash = hash_password(password, scrypt_n)
    at = clock.iso(clock.now())
    with store.write(db):
        row = store.get_user(db, username)
        if row is None:
            raise LookupError(username)
        new_role = role if role is not None else row["role"]
        new_scope = check_role_and_scope(new_role, scope if scope is not None else row["scope"])
        changes = {}
        if role is not None:
            changes["role"] = role
        if scope is not None:
            changes["scope"] = new_scope
        if unmasked is not None:
            changes["unmasked"] = bool(unmasked)
        if disabled is not None:
            changes["disabled"] = bool(disabled)
        if password is not None:
            changes["password_hash"] = password_hash
        store.update_user(db, username, changes, at)
        revoked = 0
        if password is not None or disabled:
            revoked = store.revoke_tokens(db, username, at)
        detail = {k: (list(v) if k == "scope" else v) for k, v in changes.items()
                  if k != "password_hash"}
        if password is not None or disabled is False:  # a new start: no lock-out left
            detail["failures_cleared"] = store.clear_login_failures(db, f"user:{username}")
        if password is not None:
            detail["password"] = "changed"
        store.audit(db, [(at, actor, "user_change", "user", username,
                          {**detail, "tokens_revoked": revoked})])
        row = store.get_user(db, username)
    return User.from_row(row)


def unlock(db, actor: str, username: str) -> int:
    """Forget the user's failed logins, so the right password works again at once
    (the failures counted for an address stay). The number forgotten."""
    at = clock.iso(clock.now())
    with store.write(db):
        if store.get_user(db, username) is None:
            raise LookupError(username)
        cleared = store.clear_login_failures(db, f"user:{username}")
        store.audit(db, [(at, actor, "user_unlock", "user", username,
                          {"failures_cleared": cleared})])
    return cleared


def revoke_tokens(db, actor: str, username: str) -> int:
    at = clock.iso(clock.now())
    with store.write(db):
        if store.get_user(db, username) is None:
            raise LookupError(username)
        revoked = store.revoke_tokens(db, username, at)
        store.audit(db, [(at, actor, "tokens_revoke", "user", username, {"revoked": revoked})])
    return revoked
