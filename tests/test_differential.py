"""The compiled fast path gives exactly Cerberus' verdicts, error codes and documents.

Generated records (valid ones, then mutated field by field: wrong types, None,
empty, junk text, full-width digits, lower-case x, unknown fields, missing
fields, broken nested locations) are validated by both; any difference fails.
At least 10,000 cases in all (GRIDCOLLECT_DIFF_EXAMPLES per standard).
"""
import datetime
import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum.iso7064 import mod_11_2

from gridcollect import Context, errors, ids

EXAMPLES = int(os.environ.get("GRIDCOLLECT_DIFF_EXAMPLES", "1700"))
# (record type, grid code for overlays, grid geometry known)
STANDARDS = [("person", None, True), ("person", "420502001002003", True), ("house", None, True),
             ("house", None, False), ("organization", None, True), ("event", None, True)]
assert EXAMPLES * len(STANDARDS) >= 10_000 or "GRIDCOLLECT_DIFF_EXAMPLES" in os.environ

FULL_WIDTH = str.maketrans(string.digits + "X", "０１２３４５６７８９Ｘ")


@st.composite
def id_numbers(draw):
    region = draw(st.sampled_from(["420502", "420506", "110101", "440524", "110103", "999999"]))
    year = draw(st.integers(1900, 2030))
    body = f"{region}{year:04d}{draw(st.integers(1, 12)):02d}{draw(st.integers(1, 31)):02d}" \
           f"{draw(st.integers(0, 999)):03d}"
    number = body + mod_11_2.calc_check_digit(body)
    return draw(st.sampled_from([number, number.lower(), number.translate(FULL_WIDTH),
                                 " " + number + " ", number[:-1] + "0", number[:17]]))


@st.composite
def credit_codes(draw):
    head = draw(st.sampled_from(["91", "92", "A1", "N2", "Y1", "E1"])) + "420502"
    body = "".join(draw(st.lists(st.sampled_from("0123456789ABCDEFGHJKLMNPQRTUWXY"),
                                 min_size=8, max_size=8)))
    code = head + body + ids.org_code_check_character(body)
    code += ids.uscc_check_character(code + "0")
    return draw(st.sampled_from([code, code.lower(), code[:-1] + "0", code[:16] + "X" + code[17],
                                 code.replace("1", "I", 1)]))


def locations():
    number = st.one_of(st.floats(allow_nan=False), st.integers(-1000, 1000),
                       st.floats(30.6, 30.8), st.floats(111.2, 111.4))
    return st.one_of(
        st.fixed_dictionaries({"lat": st.floats(30.69, 30.71), "lon": st.floats(111.28, 111.30)}),
        st.fixed_dictionaries({"lat": number, "lon": number}),
        st.dictionaries(st.sampled_from(["lat", "lon", "alt"]),
                        st.one_of(number, st.text(max_size=3), st.none())),
        st.lists(number, max_size=2), st.text(max_size=5))


JUNK = st.one_of(st.none(), st.just(""), st.just(" "), st.integers(), st.floats(allow_nan=False),
                 st.booleans(), st.text(max_size=12), st.lists(st.text(max_size=3), max_size=2),
                 st.dictionaries(st.text(max_size=2), st.integers(), max_size=2))


def field_values(spec, standard):
    """Values for one field: mostly plausible, sometimes junk."""
    rules = spec.rules
    name = spec.name
    if name.endswith("id_number"):
        plausible = id_numbers()
    elif name == "uscc":
        plausible = credit_codes()
    elif name == "location":
        plausible = locations()
    elif name == "special_groups":
        plausible = st.lists(st.one_of(st.sampled_from(rules["allowed"]), st.text(max_size=3),
                                       st.integers(0, 3), st.none()), max_size=3)
    elif "allowed" in rules:
        allowed = rules["allowed"]
        plausible = st.one_of(st.sampled_from(allowed),
                              st.sampled_from(allowed).map(lambda c: c.translate(FULL_WIDTH)),
                              st.sampled_from(allowed).map(lambda c: f" {c}\u3000"),
                              st.sampled_from(allowed).map(lambda c: c.lstrip("0") or c))
    elif name in ("birth_date",):
        plausible = st.one_of(st.dates().map(str), st.sampled_from(
            ["1949-12-31", "2023-02-30", "1980-1-1", "2099-01-01", "19491231"]))
    elif name == "occurred_at":
        plausible = st.one_of(st.datetimes().map(lambda d: d.isoformat()), st.sampled_from(
            ["2026-11-21T12:05:00+08:00", "2026-11-21T13:00:00", "2026-11-21 03:00:00Z",
             "yesterday", "2026-13-01T00:00"]))
    elif name == "phone":
        plausible = st.sampled_from(["13812345678", "+86 138-1234-5678", "12012345678",
                                     "0717-6123456", "(0717)6123456", "6123456", "１３８１２３４５６７８"])
    elif name in ("house_code",):
        plausible = st.sampled_from(["420502001002003-012-01-0302", "420502001002004-012-01-0302",
                                     "420502001002003-12-01-0302", "４２０５０２００１００２００３-012-01-0302"])
    elif name == "household_region":
        plausible = st.sampled_from(["420502", "420506", "110103", "999999", "42050", "４２０５０２"])
    elif rules["type"] == "integer":
        plausible = st.integers(-20, 250)
    elif rules["type"] == "number":
        plausible = st.one_of(st.integers(-5, 500), st.floats(-5, 500))
    else:
        plausible = st.text(max_size=rules.get("maxlength", 20) + 2)
    return st.one_of(plausible, plausible, plausible, JUNK)


@st.composite
def valid_person(draw):
    birth = draw(st.dates(datetime.date(1900, 1, 1), datetime.date(2026, 11, 20)))
    region = draw(st.sampled_from(["420502", "420506", "110101", "440524"]))
    body = f"{region}{birth:%Y%m%d}{draw(st.integers(0, 999)):03d}"
    number = body + mod_11_2.calc_check_digit(body)
    return {"id_number": number, "name": draw(st.sampled_from(["张三", "欧阳娜娜", "李 四"])),
            "sex": ids.id_sex(number), "birth_date": birth.isoformat(),
            "ethnicity": draw(st.sampled_from(["01", "15", "98"])), "residence_type": "1",
            "phone": "13812345678", "special_groups": ["独居老人"]}


@st.composite
def valid_house(draw):
    total = draw(st.integers(1, 30))
    return {"house_code": "420502001002003-012-01-0302", "address": "西陵区夷陵大道 1 号",
            "usage": draw(st.sampled_from(["1", "2", "9"])), "floor": draw(st.integers(1, total)),
            "total_floors": total, "area": draw(st.floats(10, 300)),
            "location": {"lat": 30.7, "lon": 111.29}}


@st.composite
def valid_organization(draw):
    body = "".join(draw(st.lists(st.sampled_from("0123456789ABCDEFGHJKLMNPQRTUWXY"),
                                 min_size=8, max_size=8)))
    code = draw(st.sampled_from(["91", "A1", "N2", "Y1"])) + "420502" + body
    code += ids.org_code_check_character(body)
    code += ids.uscc_check_character(code + "0")
    return {"uscc": code, "name": "宜昌某某有限公司", "address": "西陵区", "employees": 12,
            "phone": "0717-6123456"}


@st.composite
def valid_event(draw):
    return {"event_type": "02", "description": "楼道堆放杂物，存在消防隐患",
            "occurred_at": draw(st.sampled_from(["2026-11-20T09:30:00+08:00", "2025-01-01T00:00"])),
            "urgency": "2", "location": {"lat": 30.70, "lon": 111.29}}


VALID = {"person": valid_person, "house": valid_house, "organization": valid_organization,
         "event": valid_event}
MISSING = object()


def records(standard):
    """A valid record with 0-3 fields replaced by other values or removed, maybe extra keys."""
    names = sorted(standard.fields)
    values = {name: st.one_of(st.just(MISSING), field_values(standard.fields[name], standard))
              for name in names}

    @st.composite
    def mutated(draw):
        record = draw(VALID[standard.record_type]())
        if standard.record_type == "person" and "dog_registration" in standard.fields:
            record["dog_registration"] = "YC-2024-000123"
        mutations = st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)
        for name in draw(st.one_of(st.just([]), mutations, mutations)):
            value = draw(values[name])
            if value is MISSING:
                record.pop(name, None)
            else:
                record[name] = value
        if draw(st.integers(0, 9)) == 0:
            record[draw(st.sampled_from(["unknown", "备注"]))] = draw(JUNK)
        return record

    return mutated()


@pytest.mark.parametrize("record_type,grid_code,geometry", STANDARDS)
def test_compiled_path_agrees_with_cerberus(standards, context, record_type, grid_code, geometry):
    if not geometry:
        context = Context(None, context.now)
    standard = standards.effective(record_type, grid_code)
    assert standard._compiled is not None, "the standard must compile"
    cerberus_validator = standard.cerberus_validator(context)
    seen = {"valid": 0, "invalid": 0}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(records(standard))
    def agree(record):
        document, pairs = standard.check(record, context)
        valid = cerberus_validator.validate(record)
        expected = errors.from_cerberus(cerberus_validator._errors)
        assert sorted(pairs) == sorted(expected), record
        assert (not pairs) == valid
        assert document == cerberus_validator.document
        seen["valid" if valid else "invalid"] += 1

    agree()
    # the generator must reach both verdicts, or the comparison proves little
    assert seen["valid"] > EXAMPLES // 50 and seen["invalid"] > EXAMPLES // 50, seen


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=8)


@pytest.mark.parametrize("record_type", ["person", "house", "organization", "event"])
def test_any_json_object_gets_a_verdict_not_an_exception(standards, context, record_type):
    standard = standards.effective(record_type)
    names = st.sampled_from(sorted(standard.fields)) | st.text(max_size=4)
    cerberus_validator = standard.cerberus_validator(context)

    @settings(max_examples=300, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.dictionaries(names, JSON, max_size=6))
    def verdict(record):
        result = standard.validate(record, grid=context.grid, now=context.now)
        assert result.valid == (not result.errors)
        cerberus_validator.validate(record)
        assert sorted((e.field, e.code) for e in result.errors) == sorted(
            errors.from_cerberus(cerberus_validator._errors))

    verdict()
