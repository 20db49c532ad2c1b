"""The named rules of the field standards (``check_with: NAME``, ``coerce: NAME``).

A check is ``check(value, document, context) -> tuple of error codes``; a
coercer is ``coerce(value) -> value``. Both are pure and shared by the Cerberus
validator (the definition of validity) and the compiled fast path, so the two
cannot disagree about them. Checks ignore values of the wrong type: the
``type`` rule reports those.
"""
from __future__ import annotations

import datetime
import math
import re
import unicodedata
from dataclasses import dataclass, field

import phonenumbers

from . import clock, ids
from .clock import CHINA

# Phones' clocks drift; a timestamp this far ahead is still accepted.
CLOCK_SKEW = datetime.timedelta(minutes=10)


@dataclass(frozen=True)
class Context:
    """What a check may know besides the record: the grid cell and the time."""

    grid: object = None  # gridcollect.grids.Grid or None
    now: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(CHINA))
    today: datetime.date = field(init=False)  # the date now in China

    def __post_init__(self):
        if self.now.tzinfo is None:  # a naive time is China Standard Time
            object.__setattr__(self, "now", self.now.replace(tzinfo=CHINA))
        object.__setattr__(self, "today", self.now.astimezone(CHINA).date())


# --- coercers ---------------------------------------------------------------

_SPACES = re.compile(r"\s+")
_PHONE_SEPARATORS = re.compile(r"[\s\-()（）]+")


def coerce_text(value):
    """Free text: surrounding whitespace (including U+3000) removed."""
    return value.strip() if isinstance(value, str) else value


def coerce_code(value):
    """A code: full-width characters folded (NFKC), whitespace stripped."""
    return unicodedata.normalize("NFKC", value).strip() if isinstance(value, str) else value


def coerce_identifier(value):
    """An identifier: NFKC, every space removed, upper-case (ID ``x`` -> ``X``)."""
    if not isinstance(value, str):
        return value
    return _SPACES.sub("", unicodedata.normalize("NFKC", value)).upper()


def coerce_phone(value):
    """A phone number: NFKC, separators removed, +86 / 0086 replaced by the
    domestic form (a landline gets its trunk 0 back: +86 717 … -> 0717…)."""
    if not isinstance(value, str):
        return value
    number = _PHONE_SEPARATORS.sub("", unicodedata.normalize("NFKC", value))
    for prefix in ("+86", "0086"):
        if number.startswith(prefix):
            number = number[len(prefix):]
            is_mobile = len(number) == 11 and number.startswith("1")
            return number if is_mobile or number.startswith("0") else "0" + number
    return number


def coerce_timestamp(value):
    """A timestamp: NFKC, stripped, then in the one stored form (China Standard Time,
    milliseconds, the offset written out); a value that is not one stays as it is, for
    the ``timestamp`` check to report."""
    if not isinstance(value, str):
        return value
    text = unicodedata.normalize("NFKC", value).strip()
    try:
        return clock.canonical(text)
    except ValueError:
        return text


COERCERS = {
    "text": coerce_text,
    "timestamp": coerce_timestamp,
    "code": coerce_code,
    "identifier": coerce_identifier,
    "phone": coerce_phone,
}

# --- checks -----------------------------------------------------------------

_CN = phonenumbers.PhoneMetadata.metadata_for_region("CN")
_MOBILE = re.compile(_CN.mobile.national_number_pattern, re.ASCII)  # \d: 0-9 only
_FIXED_LINE = re.compile(_CN.fixed_line.national_number_pattern, re.ASCII)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


def _parse_date(value: str):
    if not _DATE.match(value):
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def _parse_timestamp(value: str):
    # A timestamp without an offset is China Standard Time, as phones here show.
    try:
        return clock.parse(value)
    except ValueError:
        return None


def check_mobile(value, document, context):
    if isinstance(value, str) and not _MOBILE.fullmatch(value):
        return ("mobile",)
    return ()


def check_phone(value, document, context):
    if not isinstance(value, str) or _MOBILE.fullmatch(value):
        return ()
    if value.startswith("0") and _FIXED_LINE.fullmatch(value[1:]):
        return ()
    return ("phone",)


def check_date(value, document, context):
    if isinstance(value, str) and _parse_date(value) is None:
        return ("date",)
    return ()


def check_timestamp(value, document, context):
    if isinstance(value, str) and _parse_timestamp(value) is None:
        return ("timestamp",)
    return ()


def check_not_future(value, document, context):
    """A date or timestamp not after now (unparsable values: see date/timestamp)."""
    if not isinstance(value, str):
        return ()
    day = _parse_date(value)
    if day is not None:
        return ("future",) if day > context.today else ()
    moment = _parse_timestamp(value)
    if moment is not None and moment > context.now + CLOCK_SKEW:
        return ("future",)
    return ()


def check_sex_matches_id_number(value, document, context):
    id_number = document.get("id_number")
    if value in ("1", "2") and ids.is_well_formed_id(id_number) and ids.id_sex(id_number) != value:
        return ("sex_mismatch",)
    return ()


def check_birth_date_matches_id_number(value, document, context):
    id_number = document.get("id_number")
    if (isinstance(value, str) and ids.is_well_formed_id(id_number)
            and value != f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"):
        return ("birth_date_mismatch",)
    return ()


def check_floor_within_total(value, document, context):
    total = document.get("total_floors")
    if (type(value) is int and type(total) is int) and value > total:
        return ("floor_above_total",)
    return ()


def check_house_code_in_grid(value, document, context):
    grid = context.grid
    if grid is not None and isinstance(value, str) and value[:15] != grid.code:
        return ("house_code_grid",)
    return ()


# control (Cc), format (Cf: zero-width, bidi overrides, BOM) and surrogate (Cs)
# characters: invisible, or able to disguise text; tab and line breaks are text
_INVISIBLE = frozenset({"Cc", "Cf", "Cs"})


def check_plain_text(value, document, context):
    if isinstance(value, str) and not value.isprintable() and any(
            unicodedata.category(c) in _INVISIBLE and c not in "\t\n\r" for c in value):
        return ("control_character",)
    return ()


def check_finite(value, document, context):
    """NaN and infinities slip past min and max (every comparison is False)."""
    if isinstance(value, float) and not math.isfinite(value):
        return ("not_finite",)
    return ()


def check_in_grid(value, document, context):
    grid = context.grid
    if grid is None or grid.geometry is None or not isinstance(value, dict):
        return ()
    try:
        lat, lon = _coordinate(value.get("lat")), _coordinate(value.get("lon"))
    except (TypeError, OverflowError):
        return ()  # the lat / lon rules report it
    return () if grid.contains(lon, lat) else ("outside_grid",)


def _coordinate(value) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError("not a number")
    value = float(value)  # OverflowError for an absurd integer
    if not math.isfinite(value):
        raise TypeError("not a finite number")
    return value


def make_checks(code_tables) -> dict:
    """The check registry, bound to the loaded code tables."""
    regions = {code: (entry.since, entry.until)
               for code, entry in code_tables["gb_t_2260"].codes.items()}
    authorities = frozenset(code_tables["gb_32100_authority"].codes)

    def check_gb11643(value, document, context):
        if not isinstance(value, str):
            return ()
        return ids.check_id_number(value, regions, context.today)

    def check_gb32100(value, document, context):
        return ids.check_uscc(value, authorities) if isinstance(value, str) else ()

    def check_gb2260(value, document, context):
        return ("region",) if isinstance(value, str) and value not in regions else ()

    return {
        "gb11643": check_gb11643,
        "gb32100": check_gb32100,
        "gb2260": check_gb2260,
        "mobile": check_mobile,
        "phone": check_phone,
        "date": check_date,
        "timestamp": check_timestamp,
        "not_future": check_not_future,
        "sex_matches_id_number": check_sex_matches_id_number,
        "birth_date_matches_id_number": check_birth_date_matches_id_number,
        "floor_within_total": check_floor_within_total,
        "house_code_in_grid": check_house_code_in_grid,
        "in_grid": check_in_grid,
        "finite": check_finite,
        "plain_text": check_plain_text,
    }
