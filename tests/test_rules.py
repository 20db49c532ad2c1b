"""Every rule of the four city-wide standards, through ``Standard.validate``.

Each case validates a whole record (a sound one with one thing changed) and
asserts the exact ``(field, code)`` pairs. ``verdict`` also checks, on every
error it sees, the error shape SPEC section 3 promises: the field, a code of
the catalogue, a message in Chinese and English naming the field.
"""
import datetime
import re

import pytest
import shapely.geometry
from stdnum.iso7064 import mod_11_2

from gridcollect import CATALOGUE, Grid, load_standards
from gridcollect.checks import CHINA
from gridcollect.errors import message

NOW = datetime.datetime(2026, 11, 21, 12, 0, tzinfo=CHINA)
GRID = Grid("420502001002003", "x", shapely.geometry.box(111.28, 30.69, 111.30, 30.71))
INSIDE = {"lat": 30.70, "lon": 111.29}
OUTSIDE = {"lat": 30.72, "lon": 111.29}  # just north of the cell
DROP = object()  # a field to leave out of the record
CJK = re.compile(r"[\u4e00-\u9fff]")


def with_check(body17):
    return body17 + mod_11_2.calc_check_digit(body17)


MALE_ID = with_check("42050219870101101")  # 17th digit 1: odd, male
FEMALE_ID = "11010519491231002X"  # GB 11643-1999's example: 17th digit 2, female

SOUND = {
    "person": {"id_number": MALE_ID, "name": "张三", "sex": "1", "birth_date": "1987-01-01",
               "ethnicity": "01", "residence_type": "1"},
    "house": {"house_code": "420502001002003-012-01-0302",
              "address": "湖北省宜昌市西陵区夷陵大道 12 号 1 单元 302", "usage": "1"},
    "organization": {"uscc": "91330100716105852F", "name": "宜昌某某商贸有限公司",
                     "address": "湖北省宜昌市西陵区东山大道 1 号"},
    "event": {"event_type": "02", "description": "楼道堆放杂物，存在消防隐患",
              "occurred_at": "2026-11-21T09:30:00+08:00", "location": dict(INSIDE)},
}


def record(record_type, **changes):
    """The sound record of a type with some fields changed (``DROP`` removes one)."""
    out = dict(SOUND[record_type])
    for name, value in changes.items():
        if value is DROP:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def check_error_shape(standard, error):
    assert isinstance(error.field, str)
    assert error.code in CATALOGUE, error
    zh, sep, en = error.message.partition(" / ")
    assert sep, error.message
    assert CJK.search(zh), error.message
    assert re.search(r"[A-Za-z]", en) and not CJK.search(en), error.message
    head, _, rest = error.field.partition(".")
    spec = standard.fields.get(head)
    if spec is not None:  # the message names the field by its labels
        assert zh.startswith(spec.label_zh) and en.startswith(spec.label_en), error.message
    elif error.field:  # a field the standard does not know is named as sent
        assert zh.startswith(error.field) and en.startswith(error.field), error.message
    else:
        assert zh.startswith("记录") and en.startswith("Record"), error.message
    assert error.as_dict() == {"field": error.field, "code": error.code,
                               "message": error.message}


def validate(record_type, rec, grid=None, now=NOW):
    standard = load_standards().effective(record_type)
    result = standard.validate(rec, grid=grid, now=now)
    for error in result.errors:
        check_error_shape(standard, error)
    assert result.valid == (not result.errors)
    return result


def verdict(record_type, rec, grid=None, now=NOW):
    """The ``(field, code)`` pairs of a record's errors; [] when valid."""
    return [(e.field, e.code) for e in validate(record_type, rec, grid, now).errors]


@pytest.mark.parametrize("record_type", sorted(SOUND))
def test_sound_records_are_valid(record_type):
    assert verdict(record_type, record(record_type), grid=GRID) == []


# --- generic rules ---------------------------------------------------------------

REQUIRED = {  # SPEC section 3: required in the city-wide standard
    "person": ["id_number", "name", "sex", "birth_date", "ethnicity", "residence_type"],
    "house": ["house_code", "address", "usage"],
    "organization": ["uscc", "name", "address"],
    "event": ["event_type", "description", "occurred_at", "location"],
}


@pytest.mark.parametrize("record_type", sorted(REQUIRED))
def test_required_fields_missing(record_type):
    expected = sorted((field, "required") for field in REQUIRED[record_type])
    assert sorted(verdict(record_type, {})) == expected


@pytest.mark.parametrize("record_type, field", [(t, f) for t in REQUIRED for f in REQUIRED[t]])
def test_each_required_field_alone(record_type, field):
    assert verdict(record_type, record(record_type, **{field: DROP})) == [(field, "required")]


@pytest.mark.parametrize("record_type, field", [
    ("person", "phone"), ("person", "household_region"), ("person", "special_groups"),
    ("house", "location"), ("house", "area"), ("organization", "phone"),
    ("organization", "location"), ("event", "urgency"),
])
def test_other_fields_are_optional(record_type, field):
    assert field not in SOUND[record_type]
    assert verdict(record_type, record(record_type)) == []


def test_unknown_field():
    assert verdict("person", record("person", nickname="小张")) == [("nickname", "unknown_field")]
    result = validate("person", record("person", nickname="小张"))
    assert result.errors[0].message == ("nickname 不是本标准定义的字段 / "
                                        "nickname: not a field of this standard")


@pytest.mark.parametrize("record_type, field", [
    ("person", "name"), ("person", "ethnicity"), ("house", "address"),
    ("organization", "uscc"), ("event", "description"),
])
def test_none_is_null(record_type, field):
    assert verdict(record_type, record(record_type, **{field: None})) == [(field, "null")]


@pytest.mark.parametrize("record_type, field", [
    ("person", "name"), ("person", "sex"), ("person", "id_number"), ("house", "usage"),
    ("organization", "name"), ("event", "occurred_at"),
])
@pytest.mark.parametrize("blank", ["", "   ", "\u3000"])
def test_blank_string_is_empty(record_type, field, blank):
    # blanks are stripped first, so whitespace alone is empty too
    assert verdict(record_type, record(record_type, **{field: blank})) == [(field, "empty")]


@pytest.mark.parametrize("record_type, field, value", [
    ("person", "name", 123),
    ("person", "id_number", 420502198701011015),
    ("person", "ethnicity", 1),
    ("person", "sex", ["1"]),
    ("person", "special_groups", "独居老人"),
    ("house", "floor", 3.0),
    ("house", "floor", "3"),
    ("house", "area", "85.5"),
    ("house", "location", [30.70, 111.29]),
    ("organization", "employees", "12"),
    ("organization", "employees", 12.0),
    ("event", "location", "30.70,111.29"),
])
def test_wrong_type(record_type, field, value):
    assert verdict(record_type, record(record_type, **{field: value})) == [(field, "type")]


@pytest.mark.parametrize("record_type, field", [("organization", "employees"),
                                                ("house", "floor"), ("house", "total_floors")])
def test_boolean_is_not_an_integer(record_type, field):
    # JSON true is not a head count or a floor; the spreadsheet converter
    # already refuses booleans in integer cells (tabular.Converter)
    assert verdict(record_type, record(record_type, **{field: True})) == [(field, "type")]


def test_record_that_is_not_a_mapping():
    result = validate("person", ["11010519491231002X", "张三"])
    assert [(e.field, e.code) for e in result.errors] == [("", "type")]
    assert result.errors[0].message == "记录类型错误 / Record: wrong type"


def test_every_catalogue_message_is_chinese_slash_english():
    for code in CATALOGUE:
        text = message(code, "字段", "Field")
        zh, sep, en = text.partition(" / ")
        assert sep and zh.startswith("字段") and en.startswith("Field"), (code, text)
        assert CJK.search(zh) and not CJK.search(en), (code, text)


# --- person: phone ------------------------------------------------------------------


@pytest.mark.parametrize("typed, stored", [
    ("13812345678", "13812345678"),
    ("15012345678", "15012345678"),
    ("18612345678", "18612345678"),
    ("19912345678", "19912345678"),
    ("+86 138-1234-5678", "13812345678"),
    ("0086 138 1234 5678", "13812345678"),
    ("(+86)13812345678", "13812345678"),
    ("１３８１２３４５６７８", "13812345678"),
])
def test_mobile_number_valid_and_normalised(typed, stored):
    result = validate("person", record("person", phone=typed))
    assert result.errors == []
    assert result.document["phone"] == stored


@pytest.mark.parametrize("typed", [
    "12012345678",  # no 120 mobile segment
    "23812345678",
    "1381234567",  # 10 digits
    "138123456789",  # 12 digits
    "0717-6123456",  # a landline is not a mobile number
    "+1 650 253 0000",
])
def test_not_a_mobile_number(typed):
    assert verdict("person", record("person", phone=typed)) == [("phone", "mobile")]


@pytest.mark.parametrize("typed, stored", [
    ("0717-6123456", "07176123456"),  # 宜昌 landline
    ("(0717) 612 3456", "07176123456"),
    ("010-12345678", "01012345678"),  # 北京, 8-digit local number
    ("13812345678", "13812345678"),  # a mobile number is a phone too
    ("+86 138 1234 5678", "13812345678"),
])
def test_organization_phone_mobile_or_landline(typed, stored):
    result = validate("organization", record("organization", phone=typed))
    assert result.errors == []
    assert result.document["phone"] == stored


@pytest.mark.parametrize("typed", ["6123456", "12345", "0717-123", "12012345678"])
def test_organization_phone_invalid(typed):
    assert verdict("organization", record("organization", phone=typed)) == [("phone", "phone")]


# --- person: code tables ---------------------------------------------------------------

CODE_FIELDS = [  # record type, field, codes of its table, codes that are not
    ("person", "sex", ["0", "1", "9"], ["3", "M", "男"]),
    ("person", "ethnicity", ["01", "15", "56", "97", "98"], ["57", "00", "99", "1", "汉"]),
    ("person", "residence_type", ["1", "2", "3", "4"], ["0", "5", "01"]),
    ("person", "relationship", ["01", "02", "99"], ["98", "03", "2"]),
    ("person", "education", ["21", "31", "90"], ["99", "72", "00"]),
    ("person", "marital_status", ["10", "20", "90"], ["50", "24", "1"]),
    ("person", "political_status", ["01", "13"], ["14", "00"]),
    ("house", "usage", ["1", "2", "3", "4", "9"], ["5", "0", "01"]),
    ("event", "event_type", ["01", "05", "99"], ["06", "00", "1"]),
    ("event", "urgency", ["1", "2", "3"], ["0", "4"]),
]


@pytest.mark.parametrize("record_type, field, good, bad", CODE_FIELDS,
                         ids=[f"{t}.{f}" for t, f, _, _ in CODE_FIELDS])
def test_code_table_fields(record_type, field, good, bad):
    for code in good:
        assert verdict(record_type, record(record_type, **{field: code})) == [], code
    for code in bad:
        assert verdict(record_type, record(record_type, **{field: code})) == [
            (field, "not_in_code_table")], code


@pytest.mark.parametrize("typed, stored", [("０１", "01"), (" 01 ", "01"), ("\u300001", "01")])
def test_code_is_normalised_before_lookup(typed, stored):
    result = validate("person", record("person", ethnicity=typed))
    assert result.errors == []
    assert result.document["ethnicity"] == stored


@pytest.mark.parametrize("typed, stored", [("420502", "420502"), ("４２０５０２", "420502"),
                                           ("110103", "110103")])  # 崇文区, once a real county
def test_household_region_valid(typed, stored):
    result = validate("person", record("person", household_region=typed))
    assert result.errors == []
    assert result.document["household_region"] == stored


def test_household_region_unknown():
    assert verdict("person", record("person", household_region="999999")) == [
        ("household_region", "region")]
    assert verdict("person", record("person", household_region="420599")) == [
        ("household_region", "region")]


def test_household_region_wrong_shape():
    assert sorted(verdict("person", record("person", household_region="4205"))) == [
        ("household_region", "format"), ("household_region", "region")]


def test_special_groups():
    result = validate("person", record("person", special_groups=["独居老人", "残疾人"]))
    assert result.errors == []
    assert result.document["special_groups"] == ["独居老人", "残疾人"]
    assert verdict("person", record("person", special_groups=["退役军人"])) == []
    assert verdict("person", record("person", special_groups=["外星人"])) == [
        ("special_groups", "not_in_code_table")]
    assert verdict("person", record("person", special_groups=["独居老人", "富豪"])) == [
        ("special_groups", "not_in_code_table")]
    assert verdict("person", record("person", special_groups=[1])) == [
        ("special_groups.0", "type"), ("special_groups", "not_in_code_table")]


# --- person: sex and birth date against the ID number -----------------------------------


def test_sex_against_the_id_number():
    assert verdict("person", record("person", id_number=FEMALE_ID, sex="2",
                                    birth_date="1949-12-31")) == []
    assert verdict("person", record("person", id_number=FEMALE_ID, sex="1",
                                    birth_date="1949-12-31")) == [("sex", "sex_mismatch")]
    assert verdict("person", record("person", id_number=MALE_ID, sex="2")) == [
        ("sex", "sex_mismatch")]


def test_sex_is_compared_with_the_normalised_id_number():
    assert verdict("person", record("person", id_number="11010519491231002x", sex="1",
                                    birth_date="1949-12-31")) == [("sex", "sex_mismatch")]
    assert verdict("person", record("person", id_number=" ".join(FEMALE_ID), sex="2",
                                    birth_date="1949-12-31")) == []


@pytest.mark.parametrize("sex", ["9", "0"])
@pytest.mark.parametrize("id_number, birth", [(FEMALE_ID, "1949-12-31"), (MALE_ID, "1987-01-01")])
def test_sex_unknown_or_unstated_never_mismatches(sex, id_number, birth):
    assert verdict("person", record("person", id_number=id_number, sex=sex, birth_date=birth)) == []


def test_birth_date_against_the_id_number():
    assert verdict("person", record("person", birth_date="1987-01-02")) == [
        ("birth_date", "birth_date_mismatch")]
    assert verdict("person", record("person", birth_date="1978-01-01")) == [
        ("birth_date", "birth_date_mismatch")]
    result = validate("person", record("person", birth_date="１９８７－０１－０１"))
    assert result.errors == []
    assert result.document["birth_date"] == "1987-01-01"


def test_no_comparison_with_an_invalid_id_number():
    bad_id = MALE_ID[:17] + ("0" if MALE_ID[17] != "0" else "1")
    assert verdict("person", record("person", id_number=bad_id, sex="2",
                                    birth_date="1990-05-05")) == [("id_number", "checksum")]


def test_birth_date_not_a_real_date():
    id_number = with_check("42050220230228002")  # born 2023-02-28
    assert verdict("person", record("person", id_number=id_number, sex="2",
                                    birth_date="2023-02-28")) == []
    assert verdict("person", record("person", id_number=id_number, sex="2",
                                    birth_date="2023-02-30")) == [
        ("birth_date", "date"), ("birth_date", "birth_date_mismatch")]
    # with nothing to compare it with, only the date itself is wrong
    bad_id = id_number[:17] + ("0" if id_number[17] != "0" else "1")
    assert verdict("person", record("person", id_number=bad_id, sex="2",
                                    birth_date="2023-02-30")) == [
        ("id_number", "checksum"), ("birth_date", "date")]


@pytest.mark.parametrize("typed", ["1987/01/01", "1987-1-1", "19870101", "01-01-1987",
                                   "1987-01-01T00:00:00"])
def test_birth_date_not_yyyy_mm_dd(typed):
    assert verdict("person", record("person", birth_date=typed)) == [
        ("birth_date", "date"), ("birth_date", "birth_date_mismatch")]


def test_birth_date_in_the_future():
    id_number = with_check("42050220261122001")  # born tomorrow
    assert verdict("person", record("person", id_number=id_number, birth_date="2026-11-22")) == [
        ("id_number", "id_birth_date_future"), ("birth_date", "future")]
    id_number = with_check("42050220261121001")  # born today
    assert verdict("person", record("person", id_number=id_number, birth_date="2026-11-21")) == []


# --- house ---------------------------------------------------------------------------------


def test_house_code_grid_part_must_be_the_grid():
    assert verdict("house", record("house"), grid=GRID) == []
    assert verdict("house", record("house"), grid="420502001002003") == []
    assert verdict("house", record("house"), grid="420502001002004") == [
        ("house_code", "house_code_grid")]
    other = record("house", house_code="420502001002004-012-01-0302")
    assert verdict("house", other, grid=GRID) == [("house_code", "house_code_grid")]
    assert verdict("house", other) == []  # no grid, nothing to compare with


def test_house_code_is_normalised():
    result = validate("house", record("house", house_code=" 420502001002003 - 012 - 01 - 0302 "),
                      grid=GRID)
    assert result.errors == []
    assert result.document["house_code"] == "420502001002003-012-01-0302"
    result = validate("house", record("house", house_code="４２０５０２００１００２００３－０１２－０１－０３０２"),
                      grid=GRID)
    assert result.errors == []
    assert result.document["house_code"] == "420502001002003-012-01-0302"


@pytest.mark.parametrize("code", [
    "420502001002003-12-1-302",  # numbers not padded
    "420502001002003012010302",  # no separators
    "420502001002003-012-01-0302-1",
    "42050200100200-012-01-0302",  # 14-digit grid part
    "420502001002003-012-01",
])
def test_house_code_format(code):
    assert verdict("house", record("house", house_code=code)) == [("house_code", "format")]


def test_house_code_format_and_grid_both_reported():
    assert verdict("house", record("house", house_code="420502001002004-12-1-302"), grid=GRID) == [
        ("house_code", "format"), ("house_code", "house_code_grid")]


@pytest.mark.parametrize("floor, total, expected", [
    (3, 6, []),
    (6, 6, []),  # the top floor
    (-1, 6, []),  # a basement
    (7, 6, [("floor", "floor_above_total")]),
    (5, 3, [("floor", "floor_above_total")]),
    (-11, 6, [("floor", "too_small")]),
    (0, 0, [("total_floors", "too_small")]),
    (1, 0, [("floor", "floor_above_total"), ("total_floors", "too_small")]),
    (201, 200, [("floor", "too_large"), ("floor", "floor_above_total")]),
    (3, 201, [("total_floors", "too_large")]),
])
def test_floor_and_total_floors(floor, total, expected):
    assert verdict("house", record("house", floor=floor, total_floors=total)) == expected


def test_floor_without_total_floors():
    assert verdict("house", record("house", floor=30)) == []


@pytest.mark.parametrize("area, expected", [
    (85.5, []), (0.01, []), (120, []), (100000, []),
    (0, [("area", "too_small")]),
    (0.0, [("area", "too_small")]),
    (-5, [("area", "too_small")]),
    (100000.5, [("area", "too_large")]),
])
def test_area(area, expected):
    assert verdict("house", record("house", area=area)) == expected


@pytest.mark.parametrize("record_type", ["house", "organization", "event"])
def test_location_inside_the_grid(record_type):
    assert verdict(record_type, record(record_type, location=INSIDE), grid=GRID) == []
    # the boundary belongs to the cell
    edge = {"lat": 30.71, "lon": 111.29}
    assert verdict(record_type, record(record_type, location=edge), grid=GRID) == []


@pytest.mark.parametrize("record_type", ["house", "organization", "event"])
@pytest.mark.parametrize("point", [OUTSIDE, {"lat": 30.70, "lon": 111.31},
                                   {"lat": 30.68, "lon": 111.27}])
def test_location_outside_the_grid(record_type, point):
    assert verdict(record_type, record(record_type, location=point), grid=GRID) == [
        ("location", "outside_grid")]


def test_location_not_checked_without_grid_geometry():
    assert verdict("house", record("house", location=OUTSIDE)) == []
    assert verdict("house", record("house", location=OUTSIDE), grid="420502001002003") == []


def test_location_lat_lon_swapped():
    swapped = {"lat": 111.29, "lon": 30.70}
    assert verdict("house", record("house", location=swapped)) == [
        ("location.lat", "too_large"), ("location.lon", "too_small")]
    assert sorted(verdict("house", record("house", location=swapped), grid=GRID)) == [
        ("location", "outside_grid"), ("location.lat", "too_large"),
        ("location.lon", "too_small")]


def test_location_parts():
    assert verdict("house", record("house", location={"lat": 30.70})) == [
        ("location.lon", "required")]
    assert verdict("house", record("house", location={"lat": "30.70", "lon": 111.29})) == [
        ("location.lat", "type")]
    assert verdict("house", record("house", location={"lat": 30, "lon": 111})) == []  # ints
    assert verdict("house", record("house", location={**INSIDE, "alt": 52.0})) == [
        ("location.alt", "unknown_field")]


# --- organization --------------------------------------------------------------------------


@pytest.mark.parametrize("employees, expected", [
    (0, []), (350, []), (-1, [("employees", "too_small")]),
    (10000001, [("employees", "too_large")]),
])
def test_employees(employees, expected):
    assert verdict("organization", record("organization", employees=employees)) == expected


# --- event ---------------------------------------------------------------------------------


@pytest.mark.parametrize("occurred_at", [
    (NOW - datetime.timedelta(days=3)).isoformat(),
    NOW.isoformat(),
    (NOW + datetime.timedelta(minutes=5)).isoformat(),  # a phone clock a little fast
    (NOW + datetime.timedelta(minutes=10)).isoformat(),  # the tolerated skew
    "2026-11-21T04:05:00Z",  # 12:05 in Beijing
    "2026-11-21T12:05:00",  # no offset: Beijing time
    "2026-11-21 12:05:00+08:00",
    "2026-11-21",
])
def test_occurred_at_valid(occurred_at):
    assert verdict("event", record("event", occurred_at=occurred_at)) == []


@pytest.mark.parametrize("occurred_at", [
    (NOW + datetime.timedelta(hours=1)).isoformat(),
    (NOW + datetime.timedelta(minutes=10, seconds=1)).isoformat(),
    "2026-11-21T04:30:00Z",  # 12:30 in Beijing
    "2026-11-21T12:30:00",  # Beijing time
    "2026-11-21T14:00:00+09:00",  # 13:00 in Beijing
    "2026-11-22",
    "2027-01-01T00:00:00+08:00",
])
def test_occurred_at_in_the_future(occurred_at):
    assert verdict("event", record("event", occurred_at=occurred_at)) == [("occurred_at", "future")]


@pytest.mark.parametrize("occurred_at", ["2026年11月21日 10:00", "21/11/2026 10:00", "yesterday",
                                         "2026-11-21T25:00:00", "2026-13-01T10:00:00"])
def test_occurred_at_not_iso_8601(occurred_at):
    assert verdict("event", record("event", occurred_at=occurred_at)) == [
        ("occurred_at", "timestamp")]


@pytest.mark.parametrize("occurred_at, stored", [
    ("2026-11-21T10:00:00+08:00", "2026-11-21T10:00:00.000+08:00"),
    ("2026-11-21T10:00:00", "2026-11-21T10:00:00.000+08:00"),  # no offset: Beijing time
    ("2026-11-21 10:00", "2026-11-21T10:00:00.000+08:00"),
    ("2026-11-21T02:00:00Z", "2026-11-21T10:00:00.000+08:00"),
    ("2026-11-20T18:00:00-0800", "2026-11-21T10:00:00.000+08:00"),
    ("2026-11-21T11:00+09", "2026-11-21T10:00:00.000+08:00"),
    ("2026-11-21T10:00:00,5", "2026-11-21T10:00:00.500+08:00"),  # ISO 8601's own comma
    ("2026-11-21T10:00:00.123456789+08:00", "2026-11-21T10:00:00.123+08:00"),
    ("２０２６-１１-２１T１０:００", "2026-11-21T10:00:00.000+08:00"),
    ("  2026-11-21T10:00:00+08:00 ", "2026-11-21T10:00:00.000+08:00"),
    ("2026-11-21", "2026-11-21T00:00:00.000+08:00"),
])
def test_a_timestamp_is_stored_in_one_form(occurred_at, stored):
    result = validate("event", record("event", occurred_at=occurred_at))
    assert result.valid and result.document["occurred_at"] == stored


@pytest.mark.parametrize("occurred_at", [
    "2026-11-21T10:00:00,-08:00", "2026-11-21T10:00:00,", "20261121T100000", "2026-W47-6",
    "2026-11-21T10", "2026-11-21T10:00+24:00", "2026-11-21T10:00:00.+08:00", "2026-11-21T1000",
    "2026-11-21T10:00:00+8", "2026-11-21T10:00:00 +08:00", "+2026-11-21T10:00:00",
    "2026-11-21T10:00+00:60", "2026-11-21T10:00+0099", "2026-11-21T10:00+24"])
def test_a_timestamp_outside_the_one_grammar_is_refused(occurred_at):
    result = validate("event", record("event", occurred_at=occurred_at))
    assert [(e.field, e.code) for e in result.errors] == [("occurred_at", "timestamp")]


@pytest.mark.parametrize("description, expected", [
    ("路灯坏了。", []),
    ("abcd", [("description", "too_short")]),
    ("路灯坏了", [("description", "too_short")]),
    ("  路灯坏了  ", [("description", "too_short")]),  # stripped before counting
    ("x" * 2000, []),
    ("x" * 2001, [("description", "too_long")]),
])
def test_description_length(description, expected):
    assert verdict("event", record("event", description=description)) == expected


def test_a_naive_now_is_china_time():
    # 2026-11-21 01:00 in China is still 2026-11-20 in UTC: a birth on the 21st is not future
    body = "11010520261121002"
    rec = record("person", id_number=with_check(body), birth_date="2026-11-21", sex="2")
    naive = datetime.datetime(2026, 11, 21, 1, 0)
    assert validate("person", rec, now=naive).valid
    assert [(e.field, e.code) for e in validate(
        "person", rec, now=datetime.datetime(2026, 11, 20, 23, 0)).errors] == [
        ("id_number", "id_birth_date_future"), ("birth_date", "future")]


@pytest.mark.parametrize("field,value,code", [
    ("id_number", "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X", "id_format"),   # Arabic-Indic digits: not folded by NFKC
    ("phone", "١٣٨١٢٣٤٥٦٧٨", "mobile"),
    ("household_region", "٤٢٠٥٠٢", "format"),
])
def test_digits_of_other_scripts_are_not_digits(field, value, code):
    result = validate("person", record("person", **{field: value}))
    assert (field, code) in [(e.field, e.code) for e in result.errors]


@pytest.mark.parametrize("typed,stored", [
    ("+86 717 6123456", "07176123456"), ("+86 10 6512 3456", "01065123456"),
    ("0086-717-6123456", "07176123456"), ("+86 138 1234 5678", "13812345678"),
])
def test_international_landlines_get_their_trunk_zero_back(typed, stored):
    result = validate("organization", record("organization", phone=typed))
    assert result.valid and result.document["phone"] == stored


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_numbers_must_be_finite(value):
    result = validate("house", record("house", area=value, location={"lat": value, "lon": 111.29}),
                      grid=GRID)
    codes = [(e.field, e.code) for e in result.errors]
    assert ("area", "not_finite") in codes and ("location.lat", "not_finite") in codes


def test_absurd_coordinates_are_errors_not_crashes():
    result = validate("house", record("house", location={"lat": 10 ** 400, "lon": 111.29}),
                      grid=GRID)
    assert [(e.field, e.code) for e in result.errors] == [("location.lat", "too_large")]


def test_birth_dates_before_1850_are_typos():
    result = validate("person", record("person", id_number=with_check("11010500010101001"),
                                       birth_date="0001-01-01"))
    assert ("id_number", "id_birth_date") in [(e.field, e.code) for e in result.errors]
