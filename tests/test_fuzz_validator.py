"""Hypothesis on the validator library: whatever a record holds, the answer is a verdict.

``Standard.validate`` (and ``validate_many`` and ``check``, which ``gridcollect
validate`` uses) documents one outcome for any record: a ``ValidationResult``
whose errors are ``FieldError``s with a code of the catalogue and a message in
Chinese and English — never an exception. Here records of the four types, the
city-wide standards and the overlay of 420502001002, on the compiled fast path
and on the Cerberus path a standard falls back to when it does not compile, get
values of every JSON type under known and unknown names: nested lists and
objects, full-width digits, NUL and other control characters, bidi controls,
zero-width characters, lone surrogates (``json.loads`` gives them to a caller
reading a file), integers far beyond 64 bits, NaN and infinities. A second test
starts from a valid record of each type and changes one thing in it.
"""
import copy
import json
import math
import threading

import pytest
from conftest import GRID_CODE, event, person
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridcollect import CATALOGUE, FieldError, ValidationResult, load_standards
from gridcollect.standards import RECORD_TYPES, Standard

EXAMPLES = 200
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])

VALID = {
    "person": person(1),  # valid in GRID_CODE, whose overlay requires the phone
    "house": {"house_code": f"{GRID_CODE}-012-01-0302", "address": "湖北省宜昌市西陵区夷陵大道 12 号",
              "usage": "2", "owner_id_number": "11010519491231002X", "owner_name": "王芳",
              "area": 86.5, "floor": 3, "total_floors": 6, "location": {"lat": 30.70, "lon": 111.29}},
    "organization": {"uscc": "91330100716105852F", "name": "宜昌某某商贸有限公司",
                     "address": "湖北省宜昌市西陵区东山大道 1 号", "employees": 12,
                     "phone": "0717-6123456", "location": {"lat": 30.70, "lon": 111.29}},
    "event": event(urgency="2"),
}

# --- values ---------------------------------------------------------------------------

ODD_TEXT = [
    "", " ", "\u3000", "\t\n", "\x00", "a\x00b", "\x1b[31m", "\x7f", "\u200b", "\ufeff",
    "\u202e", "\u2066abc\u2069", "\u200f", "\u061c", "１２３", "４２０５０２１９８００１０１１２３３",
    "420502198001011233", "42050219800101123x", "91330100716105852F", "ⅫⅣ", "①②",
    "٣٤٥", "१२३", "𝟏𝟐𝟑", "\ud800", "\udfff", "a\udc80b", "\ud83d\ude00", "😀", "e\u0301",
    "ﬁ", "ǅ", "İ", "ß", "NaN", "Infinity", "-Infinity", "1e309", "-0", "0x10", "1_000",
    "2026-11-20", "2026-02-30", "0000-00-00", "9999-12-31T23:59:59-12:00",
    "2026-11-20T10:00:00+08:00", "+86 138-1234-5678", "13812345678", "独居老人",
    "420502001002003-012-01-0302", "x" * 10_000, "张" * 51, "=1+1", "'; DROP TABLE x; --",
]
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"])
TEXT = st.one_of(
    st.text(max_size=25),
    st.text(st.one_of(st.characters(), SURROGATES,
                      st.sampled_from("\x00\u202e\u200b\u3000０１２３４５６７８９Ｘｘ")), max_size=25),
    st.sampled_from(ODD_TEXT))
NUMBERS = st.one_of(
    st.integers(), st.integers(-2 ** 200, 2 ** 200),
    st.sampled_from([0, -1, 2 ** 63, -2 ** 63 - 1, 2 ** 64, 10 ** 400, -10 ** 400]),
    st.floats(), st.sampled_from([math.nan, -math.nan, math.inf, -math.inf, -0.0, 5e-324,
                                  1.7976931348623157e308, 30.70, 111.29]))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(["lat", "lon", "alt", ""]), TEXT), inner,
                    max_size=4)), max_leaves=12)


def names(record_type):
    """Field names: this type's (with what overlays add), other types', and unknown ones."""
    standards = load_standards()
    own = sorted(standards.all_fields(record_type))
    others = sorted({name for t in RECORD_TYPES for name in standards.all_fields(t)} - set(own))
    return st.one_of(st.sampled_from(own), st.sampled_from(own), st.sampled_from(others),
                     TEXT, st.sampled_from(["location.lat", "__proto__", "id_number ",
                                            "ID_NUMBER", "身份证号"]))


# --- the verdict ---------------------------------------------------------------------------

def standards_of(standards, record_type):
    """``(compiled, on Cerberus)`` for the city-wide standard and, where an overlay
    changes it, the standard of GRID_CODE."""
    out, seen = [], set()
    for grid_code in (None, GRID_CODE):
        standard = standards.effective(record_type, grid_code)
        if standard.digest in seen:
            continue
        seen.add(standard.digest)
        assert standard._compiled is not None, "the bundled standards compile"
        # a standard with a rule the compiler lacks runs on Cerberus (Standard.check);
        # a clone, not copy.copy: Standard.__reduce__ would hand back the cached standard
        on_cerberus = object.__new__(Standard)
        on_cerberus.__dict__.update(vars(standard), _compiled=None, _local=threading.local())
        out.append((standard, on_cerberus))
    return out


def assert_verdict(result):
    assert isinstance(result, ValidationResult), result
    assert isinstance(result.valid, bool) and isinstance(result.document, dict)
    assert result.valid == (not result.errors)
    for error in result.errors:
        assert isinstance(error, FieldError), error
        assert isinstance(error.field, str) and error.code in CATALOGUE, error
        assert isinstance(error.message, str) and " / " in error.message, error
    # what a caller does next: report it as JSON
    json.dumps(result.as_dict())


def pairs(result):
    return sorted((e.field, e.code) for e in result.errors)


def judge(standards, record_type, record, context):
    """Every way in: validate (with the grid, without, with a bare grid code, as the
    CLI may call it), validate_many and check on the compiled path, validate on the
    Cerberus path; the two paths give the same verdict (validator.py promises it)."""
    for standard, on_cerberus in standards_of(standards, record_type):
        result = standard.validate(record, grid=context.grid, now=context.now)
        assert_verdict(result)
        for grid in (None, GRID_CODE):
            assert_verdict(standard.validate(record, grid=grid, now=context.now))
        [again] = standard.validate_many([record], grid=context.grid, now=context.now)
        assert (again.valid, again.errors) == (result.valid, result.errors)
        document, raw = standard.check(record, context)
        assert isinstance(document, dict) and sorted(raw) == pairs(result)
        slow = on_cerberus.validate(record, grid=context.grid, now=context.now)
        assert_verdict(slow)
        if pairs(slow) != [("", "invalid")]:  # Cerberus raised: Standard.check's fallback
            assert pairs(slow) == pairs(result), record
    return result


# --- tests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_any_record_gets_a_verdict(standards, context, figures, record_type):
    @SETTINGS
    @given(st.dictionaries(names(record_type), JSON, max_size=8))
    def verdict(record):
        judge(standards, record_type, record, context)
        figures("validator fuzz cases")

    verdict()


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_a_record_that_is_not_an_object_is_a_type_error(standards, context, figures,
                                                        record_type):
    @settings(SETTINGS, max_examples=EXAMPLES // 4)
    @given(JSON.filter(lambda value: not isinstance(value, dict)))
    def verdict(record):
        for both in standards_of(standards, record_type):
            for standard in both:
                result = standard.validate(record, grid=context.grid, now=context.now)
                assert_verdict(result)
                assert pairs(result) == [("", "type")]
        figures("validator fuzz cases")

    verdict()


@st.composite
def one_change(draw, record_type):
    """A valid record with one field replaced, removed, renamed, wrapped or retyped,
    or one unknown field added."""
    record = copy.deepcopy(VALID[record_type])
    name = draw(st.sampled_from(sorted(record)))
    value = record[name]
    how = draw(st.sampled_from(["replace", "remove", "rename", "wrap", "stringify", "nest",
                                "add", "location"]))
    if how == "replace":
        record[name] = draw(JSON)
    elif how == "remove":
        del record[name]
    elif how == "rename":
        record[draw(names(record_type))] = record.pop(name)
    elif how == "wrap":
        record[name] = draw(st.sampled_from([[value], {"value": value}, [value, value]]))
    elif how == "stringify":
        record[name] = json.dumps(value, ensure_ascii=False) if draw(st.booleans()) \
            else draw(st.sampled_from([str, repr]))(value)
    elif how == "nest":
        record[name] = {"location": record.get("location"), name: value}
    elif how == "add":
        record[draw(names(record_type))] = draw(JSON)
    else:  # a location (or something in its place) with odd coordinates
        record["location"] = draw(st.one_of(
            st.fixed_dictionaries({"lat": NUMBERS, "lon": NUMBERS}),
            st.dictionaries(st.sampled_from(["lat", "lon", "alt"]), JSON, max_size=3), JSON))
    return record


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_a_valid_record_with_one_change_gets_a_verdict(standards, context, figures,
                                                       record_type):
    base = judge(standards, record_type, VALID[record_type], context)
    assert base.valid, [e.as_dict() for e in base.errors]

    seen = {True: 0, False: 0}

    @SETTINGS
    @given(one_change(record_type))
    def verdict(record):
        seen[judge(standards, record_type, record, context).valid] += 1
        figures("validator fuzz cases")

    verdict()
    assert seen[True] and seen[False], seen  # one change may or may not break a record
