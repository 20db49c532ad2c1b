"""Time as the server records it: China Standard Time, ISO 8601, millisecond precision.

Every stored timestamp has the same shape (``2026-11-21T09:30:00.000+08:00``),
so comparing the strings compares the times, and an export never meets a
timestamp written any other way: times coming in are read by one strict
grammar (``parse``) and stored in that one form (``iso``, ``canonical``).
"""
from __future__ import annotations

import datetime
import re

CHINA = datetime.timezone(datetime.timedelta(hours=8), "Asia/Shanghai")

# ISO 8601's extended form as phones and spreadsheets write it: a date, or a date and
# a time (seconds and fraction optional, "." or "," before the fraction), with an
# optional offset. Not the rest of what datetime.fromisoformat takes (basic form
# 20261201T1000, week dates, a comma with no digits before an offset).
_TIMESTAMP = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[Tt ](?P<hm>[0-9]{2}:[0-9]{2})(?P<s>:[0-9]{2}(?:[.,](?P<frac>[0-9]{1,9}))?)?"
    r"(?P<offset>[Zz]|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?)?\Z", re.ASCII)


def now() -> datetime.datetime:
    return datetime.datetime.now(CHINA)


def iso(moment: datetime.datetime) -> str:
    """The stored form of an aware (or China-local naive) time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CHINA)
    return moment.astimezone(CHINA).isoformat(timespec="milliseconds")


def parse(text: str) -> datetime.datetime:
    """An ISO 8601 time, in China Standard Time; without an offset it already is.

    ValueError for anything outside the grammar above. A time after the end of year
    9999 in China is the last representable moment (still "in the future"); one
    before year 1 there raises ValueError.
    """
    match = _TIMESTAMP.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}")
    normal = match["date"]
    if match["hm"]:
        normal += "T" + match["hm"] + (match["s"] or ":00")[:3]
        if match["frac"]:
            normal += "." + match["frac"][:6].ljust(6, "0")
        offset = match["offset"]
        if offset and offset in "Zz":
            normal += "+00:00"
        elif offset:
            digits = offset[1:].replace(":", "")
            normal += offset[0] + digits[:2] + ":" + (digits[2:] or "00")
    moment = datetime.datetime.fromisoformat(normal)  # ValueError for a date that isn't
    if moment.tzinfo is None:
        return moment.replace(tzinfo=CHINA)
    try:
        return moment.astimezone(CHINA)
    except OverflowError:
        if moment.year == datetime.MAXYEAR:
            return datetime.datetime.max.replace(tzinfo=CHINA)
        raise ValueError(f"time out of range: {text}") from None


def canonical(text: str) -> str:
    """The stored form of a timestamp given as text; ValueError when it is not one."""
    return iso(parse(text))
