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
    """An ISO 8601 time; without an offset it is China Standard Time."""
    moment = datetime.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=CHINA)
