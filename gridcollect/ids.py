"""National identifiers: pure functions, no I/O.

Each ``check_*`` returns a tuple of error codes from the catalogue
(``gridcollect.errors``); an empty tuple means the value is valid. They are the
single implementation behind both the Cerberus rules and the compiled fast path.

Where python-stdnum is right we use it (ISO 7064 MOD 11-2, the GB 32100
weights); where it is not, we do not: ``stdnum.cn.ric`` rejects an ID whose
county code was created after the holder's birth year (the code is the county
at the time of issue) and accepts future birth dates; ``stdnum.cn.uscc``
rejects codes beginning with a letter (authorities A, N, Y) and skips the
embedded GB 11714 check character.
"""
from __future__ import annotations

import datetime
import re

from stdnum.cn.ric import calc_check_digit as _ric_check_character

_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]\Z")


# No living person was born before this; earlier "birth dates" are typos.
EARLIEST_BIRTH = datetime.date(1850, 1, 1)


def check_id_number(value: str, regions: dict, today: datetime.date) -> tuple:
    """GB 11643-1999 公民身份号码, already normalised (upper-case, no spaces).

    ``regions`` maps a GB/T 2260 code to ``(since, until)`` years (None = open).
    """
    if len(value) != 18 or not _ID_SHAPE.match(value):
        return ("id_format",)
    if id_check_character(value) != value[17]:
        return ("checksum",)
    birth = id_birth_date(value)
    if birth is None or birth < EARLIEST_BIRTH:
        return ("id_birth_date",)
    if birth > today:
        return ("id_birth_date_future",)
    years = regions.get(value[:6])
    # The code is the county's at the time of issue, which is after birth, so a
    # county created later is fine; one abolished before the birth year is not.
    if years is None or (years[1] is not None and years[1] < birth.year):
        return ("id_region",)
    return ()


def is_well_formed_id(value) -> bool:
    """18 characters of the right shape with the right check character."""
    return (isinstance(value, str) and len(value) == 18 and _ID_SHAPE.match(value) is not None
            and id_check_character(value) == value[17])


def id_check_character(value: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits (python-stdnum)."""
    return _ric_check_character(value)


def id_birth_date(value: str):
    """The birth date encoded in an 18-character ID number, or None."""
    try:
        return datetime.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None


def id_sex(value: str) -> str:
    """GB/T 2261.1 sex code from the 17th character: odd 1 (male), even 2."""
    return "1" if int(value[16]) % 2 else "2"


# GB 32100-2015 unified social credit code
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_SHAPE = re.compile(r"[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}\Z")

# GB 11714-1997 organisation code: 8 body characters, then the check character
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def uscc_check_character(value: str) -> str:
    total = sum(_USCC_VALUE[c] * w for c, w in zip(value[:17], _USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def org_code_check_character(body: str) -> str:
    """GB 11714 check character of the 8-character organisation code body."""
    total = sum(int(c, 36) * w for c, w in zip(body, _ORG_WEIGHTS))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def check_uscc(value: str, authorities) -> tuple:
    """GB 32100-2015 统一社会信用代码, already normalised.

    ``authorities`` holds the valid two-character authority + entity-type codes.
    """
    if len(value) != 18 or not _USCC_SHAPE.match(value):
        return ("uscc_format",)
    if uscc_check_character(value) != value[17]:
        return ("checksum",)
    if org_code_check_character(value[8:16]) != value[16]:
        return ("uscc_org_checksum",)
    if value[:2] not in authorities:
        return ("uscc_authority",)
    return ()
