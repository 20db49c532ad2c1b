"""Log lines without secrets or personal data.

A log is read by operators, shipped to other machines and kept for years: it must
not hold a password, a token or an ID number. Passwords and tokens travel only in
bodies and headers, which are never logged. Paths and queries are: a person's
record is looked up by its ID number (``/records/person/<id number>``) and records
are filtered by any field (``?phone=…``). So a request is logged with ID numbers
masked in its path, and with the values of its query parameters shown only for
parameters that never carry personal data. Every other log line has ID numbers
masked too, and what a client sent is logged with its control characters escaped.
"""
from __future__ import annotations

import logging
import re
import unicodedata
import urllib.parse

# 18 characters, 17 digits and a check digit or X, not inside a longer run of digits.
# (The 15-digit IDs of before 1999 are no longer valid, and 15 digits is a grid code.)
_ID_NUMBER = re.compile(r"(?<![0-9])([0-9]{6})([0-9]{8})([0-9]{3}[0-9Xx])(?![0-9Xx])")
# query parameters of the API that carry no personal data
SAFE_PARAMETERS = frozenset({
    "action", "actor", "changed_since", "cursor", "format", "geometry", "grid", "labels",
    "level", "limit", "object_type", "record_type", "retired", "since", "state", "under",
    "until"})


def _mask(match) -> str:
    head, middle, tail = match.groups()
    return head + "*" * len(middle) + tail


def printable(text: str) -> str:
    """``text`` with control, format (bidi) and separator characters escaped (``\\n``,
    ``\\u202e``): what a user typed cannot forge a line, hide itself or read backwards
    in a log, an audit entry or a report."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in " \u3000" else ascii(c)[1:-1] for c in text)


def redact(text: str) -> str:
    """``text`` with every ID number masked like ``420502********1234`` (full-width
    digits count as digits)."""
    text = unicodedata.normalize("NFKC", text)
    return _ID_NUMBER.sub(_mask, text)


_KEY_URL = re.compile(r"(/openrosa/key/)[^/?]*")


def request_target(raw_uri: str) -> str:
    """A request's path and query as they may be logged."""
    path, _, query = raw_uri.partition("?")
    path = urllib.parse.unquote(path, errors="replace")
    path = _KEY_URL.sub(r"\1*", path)  # an OpenRosa key in a URL is a credential
    if query:
        shown = []
        for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True,
                                                 errors="replace"):
            shown.append(f"{key}={value}" if key in SAFE_PARAMETERS else f"{key}=*")
        path += "?" + "&".join(shown)
    return printable(redact(path))


class RedactFilter(logging.Filter):
    """Masks ID numbers in every record a handler writes, its traceback included."""

    def filter(self, record):
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
