"""Time as the server records it: China Standard Time, ISO 8601, millisecond precision.

Every stored timestamp has the same shape (``2026-11-21T09:30:00.000+08:00``),
so comparing the strings compares the times.
"""
from __future__ import annotations

import datetime

from .checks import CHINA


def now() -> datetime.datetime:
    return datetime.datetime.now(CHINA)


def iso(moment: datetime.datetime) -> str:
    """The stored form of an aware (or China-local naive) time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CHINA)
    return moment.astimezone(CHINA).isoformat(timespec="milliseconds")


def parse(text: str) -> datetime.datetime:
    """An ISO 8601 time, in China Standard Time; without an offset it already is.

    A time after the end of year 9999 in China is the last representable moment
    (still "in the future"); one before year 1 there raises ValueError.
    """
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=CHINA)
    try:
        return moment.astimezone(CHINA)
    except OverflowError:
        if moment.year == datetime.MAXYEAR:
            return datetime.datetime.max.replace(tzinfo=CHINA)
        raise ValueError(f"time out of range: {text}") from None
