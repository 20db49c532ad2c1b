"""GB 11643-1999 citizen ID numbers and GB 32100-2015 unified social credit codes.

Through the pure functions of ``gridcollect.ids`` and through the person and
organization standards, on published vectors; where python-stdnum disagrees
with the standard (SPEC section 3), the test says so by asserting stdnum's
verdict next to ours.
"""
import datetime

import pytest
from stdnum.cn import ric as stdnum_ric
from stdnum.cn import uscc as stdnum_uscc
from stdnum.iso7064 import mod_11_2

from gridcollect import CATALOGUE, ids, load_standards
from gridcollect.checks import CHINA

NOW = datetime.datetime(2026, 11, 21, 12, 0, tzinfo=CHINA)
TODAY = datetime.date(2026, 11, 21)

# GB 11643-1999's own examples (appendix): a woman born 1949-12-31 in Beijing
# 朝阳区, a man born 1880-01-01 in Guangdong 汕头 潮阳.
GB_EXAMPLE_FEMALE = "11010519491231002X"
GB_EXAMPLE_MALE = "440524188001010014"

# Published unified social credit codes of real companies.
REAL_USCCS = {
    "91330100716105852F": "阿里巴巴（中国）有限公司",
    "914403001922038216": "华为技术有限公司",
    "91440300708461136T": "深圳市腾讯计算机系统有限公司",
    "91110108551385082Q": "小米科技有限责任公司",
    "9144030071526726XG": "a 深圳 company whose GB 11714 check character is X",
}


def with_check(body17):
    """An 18-character ID: 17 characters and their ISO 7064 MOD 11-2 check character."""
    return body17 + mod_11_2.calc_check_digit(body17)


def wrong_check(id_number):
    """The same ID with a check character that is wrong."""
    return id_number[:17] + ("0" if id_number[17] != "0" else "1")


def regions():
    return {code: (entry.since, entry.until)
            for code, entry in load_standards().code_tables["gb_t_2260"].codes.items()}


def authorities():
    return frozenset(load_standards().code_tables["gb_32100_authority"].codes)


def person_record(id_number, **fields):
    """A complete person record, its birth date read from characters 7-14 of the ID."""
    # sex 9 (未说明) is never compared with the ID
    birth = f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"
    return {"id_number": id_number, "name": "张三", "sex": "9", "birth_date": birth,
            "ethnicity": "01", "residence_type": "1", **fields}


def person_result(id_number, now=NOW, **fields):
    return load_standards().effective("person").validate(person_record(id_number, **fields),
                                                         now=now)


def id_codes(id_number, now=NOW):
    """The error codes on ``id_number`` of an otherwise sound person record."""
    result = person_result(id_number, now=now)
    for error in result.errors:
        assert error.code in CATALOGUE
        assert " / " in error.message
    return [e.code for e in result.errors if e.field == "id_number"]


def org_result(uscc):
    return load_standards().effective("organization").validate(
        {"uscc": uscc, "name": "宜昌某某有限公司", "address": "湖北省宜昌市西陵区东山大道 1 号"},
        now=NOW)


def uscc_codes(uscc):
    return [(e.field, e.code) for e in org_result(uscc).errors]


def make_uscc(authority, region, body8):
    """A GB 32100 code built from its parts, both check characters computed.

    ``org_code_check_character`` and ``uscc_check_character`` are the library's
    own; ``test_check_characters_of_real_codes`` pins them to published codes,
    so a code built with them is as good as one issued.
    """
    head = authority + region + body8 + ids.org_code_check_character(body8)
    return head + ids.uscc_check_character(head)


# --- GB 11643: pure functions -------------------------------------------------


@pytest.mark.parametrize("id_number", [GB_EXAMPLE_FEMALE, GB_EXAMPLE_MALE])
def test_gb_examples_pass_the_pure_check(id_number):
    assert ids.check_id_number(id_number, regions(), TODAY) == ()


def test_birth_date_and_sex_of_the_gb_examples():
    assert ids.id_birth_date(GB_EXAMPLE_FEMALE) == datetime.date(1949, 12, 31)
    assert ids.id_birth_date(GB_EXAMPLE_MALE) == datetime.date(1880, 1, 1)
    assert ids.id_sex(GB_EXAMPLE_FEMALE) == "2"  # 17th digit 2: even
    assert ids.id_sex(GB_EXAMPLE_MALE) == "1"  # 17th digit 1: odd
    assert ids.id_birth_date(with_check("11010519490230002")) is None


def test_pure_check_wants_normalised_input():
    # check_id_number is documented to take upper-case input; the standard's
    # coercer does the normalising (tested below)
    assert ids.check_id_number(GB_EXAMPLE_FEMALE.lower(), regions(), TODAY) == ("id_format",)


# --- GB 11643: through the person standard ------------------------------------


@pytest.mark.parametrize("id_number, sex, birth_date", [
    (GB_EXAMPLE_FEMALE, "2", "1949-12-31"),
    (GB_EXAMPLE_MALE, "1", "1880-01-01"),
])
def test_gb_examples_are_valid_person_records(id_number, sex, birth_date):
    result = person_result(id_number, sex=sex)
    assert result.valid, result.as_dict()
    assert result.errors == []
    assert result.document["id_number"] == id_number
    assert result.document["birth_date"] == birth_date


def test_lower_case_x_is_normalised_to_upper_case():
    result = person_result("11010519491231002x", sex="2")
    assert result.valid, result.as_dict()
    assert result.document["id_number"] == "11010519491231002X"


@pytest.mark.parametrize("typed", [
    "１１０１０５１９４９１２３１００２Ｘ",  # full-width digits and letter
    "１１０１０５１９４９１２３１００２ｘ",  # full-width lower-case x
    " 110105 19491231 002X ",  # spaces between the groups
    "110105\u300019491231\u3000002x",  # ideographic spaces (U+3000)
    "110105\t19491231\n002X",
])
def test_full_width_digits_and_stray_spaces_are_normalised(typed):
    result = person_result(typed, sex="2", birth_date="1949-12-31")
    assert result.valid, result.as_dict()
    assert result.document["id_number"] == GB_EXAMPLE_FEMALE


@pytest.mark.parametrize("id_number", [
    "11010519491231002",  # 17 characters
    "11010519491231002XX",  # 19 characters
    "1101051949123100X2",  # X not last
    "11010519491231002Y",  # a check character that is not a digit or X
    "1101051949A231002X",  # a letter among the digits
    "110105194912310",  # the old 15-digit form is not accepted
])
def test_wrong_shape_is_id_format(id_number):
    assert id_codes(id_number) == ["id_format"]


@pytest.mark.parametrize("id_number", [GB_EXAMPLE_FEMALE, GB_EXAMPLE_MALE])
def test_wrong_check_character_is_checksum(id_number):
    bad = wrong_check(id_number)
    result = person_result(bad)
    # nothing else is reported: sex and birth date are not compared with a bad ID
    assert [(e.field, e.code) for e in result.errors] == [("id_number", "checksum")]
    assert result.errors[0].message == ("公民身份号码校验位错误 / "
                                        "Citizen ID number: check character is wrong")


def test_swapped_digits_are_caught_by_the_check_character():
    swapped = "11010519492131002X"  # 12-31 typed as 21-31
    assert id_codes(swapped) == ["checksum"]


@pytest.mark.parametrize("body", [
    "11010519490230002",  # 30 February
    "11010519490229002",  # 1949 is not a leap year
    "11010519491301002",  # month 13
    "11010519491200002",  # day 0
])
def test_birth_date_that_does_not_exist_is_id_birth_date(body):
    assert id_codes(with_check(body)) == ["id_birth_date"]


def test_leap_day_is_a_real_birth_date():
    assert id_codes(with_check("42050219880229002")) == []


def test_birth_date_in_the_future_is_id_birth_date_future():
    tomorrow = with_check("42050220261122002")
    assert id_codes(tomorrow) == ["id_birth_date_future"]
    assert id_codes(with_check("42050220300101002")) == ["id_birth_date_future"]
    # stdnum's ric accepts a future birth date (documented gap in gridcollect.ids)
    assert stdnum_ric.is_valid(tomorrow)


def test_born_today_is_not_in_the_future():
    assert id_codes(with_check("42050220261121002")) == []


def test_the_future_is_measured_from_now():
    tomorrow = with_check("42050220261122002")
    assert id_codes(tomorrow, now=NOW) == ["id_birth_date_future"]
    assert id_codes(tomorrow, now=NOW + datetime.timedelta(days=1)) == []


def test_today_is_the_date_in_china_not_in_utc():
    tomorrow = with_check("42050220261122002")
    # 2026-11-21 20:00 UTC is already 2026-11-22 04:00 in Beijing
    late_utc = datetime.datetime(2026, 11, 21, 20, 0, tzinfo=datetime.timezone.utc)
    assert id_codes(tomorrow, now=late_utc) == []
    early_utc = datetime.datetime(2026, 11, 21, 15, 0, tzinfo=datetime.timezone.utc)
    assert id_codes(tomorrow, now=early_utc) == ["id_birth_date_future"]


@pytest.mark.parametrize("body", [
    "99999919800101001",  # no such code
    "00000019800101001",
    "42059919800101001",  # 宜昌市 has no 599
])
def test_unknown_region_code_is_id_region(body):
    assert id_codes(with_check(body)) == ["id_region"]


def test_yichang_xiling_id_issued_after_birth_is_valid():
    # 西陵区 420502 was created in 1986; a person born in 1980 who got the ID
    # there later has it: the code is the county at the time of issue
    id_number = with_check("42050219800101001")
    result = person_result(id_number, sex="1")
    assert result.valid, result.as_dict()
    # python-stdnum rejects it: the gap gridcollect.ids exists to close
    assert not stdnum_ric.is_valid(id_number)


def test_yichang_yiling_id_issued_after_birth_is_valid():
    # 夷陵区 420506 was created in 2001
    id_number = with_check("42050619700101002")
    result = person_result(id_number, sex="2")
    assert result.valid, result.as_dict()
    assert not stdnum_ric.is_valid(id_number)


def test_code_abolished_before_birth_is_id_region():
    # 崇文区 110103 was merged into 东城区 in 2010: nobody born in 2015 got it
    assert id_codes(with_check("11010320150101001")) == ["id_region"]


@pytest.mark.parametrize("year", ["1949", "1990", "2010"])
def test_code_in_force_in_the_birth_year_is_valid(year):
    # 2010 is the last year 崇文区 existed (until is inclusive)
    assert id_codes(with_check(f"110103{year}0101001")) == []


def test_house_owner_id_number_uses_the_same_rule():
    house = load_standards().effective("house")
    base = {"house_code": "420502001002003-012-01-0302", "address": "西陵区某路 1 号",
            "usage": "1"}
    result = house.validate({**base, "owner_id_number": "11010519491231002x"}, now=NOW)
    assert result.valid, result.as_dict()
    assert result.document["owner_id_number"] == GB_EXAMPLE_FEMALE
    result = house.validate({**base, "owner_id_number": wrong_check(GB_EXAMPLE_FEMALE)}, now=NOW)
    assert [(e.field, e.code) for e in result.errors] == [("owner_id_number", "checksum")]
    assert result.errors[0].message.startswith("产权人公民身份号码校验位错误 / ")


def test_organization_legal_rep_id_number_uses_the_same_rule():
    org = load_standards().effective("organization")
    base = {"uscc": "91330100716105852F", "name": "某公司", "address": "某路 1 号"}
    future = with_check("42050220271231001")
    result = org.validate({**base, "legal_rep_id_number": future}, now=NOW)
    assert [(e.field, e.code) for e in result.errors] == [
        ("legal_rep_id_number", "id_birth_date_future")]


# --- GB 32100: pure functions ---------------------------------------------------


@pytest.mark.parametrize("code", sorted(REAL_USCCS))
def test_check_characters_of_real_codes(code):
    assert ids.uscc_check_character(code[:17]) == code[17]
    assert ids.org_code_check_character(code[8:16]) == code[16]
    assert ids.check_uscc(code, authorities()) == ()


def test_gb_11714_check_character_ten_is_x():
    assert ids.org_code_check_character("71526726") == "X"


# --- GB 32100: through the organization standard ------------------------------


@pytest.mark.parametrize("code", sorted(REAL_USCCS))
def test_real_codes_are_valid(code):
    result = org_result(code)
    assert result.valid, result.as_dict()
    assert result.document["uscc"] == code
    assert stdnum_uscc.is_valid(code)  # stdnum agrees on these


def test_uscc_is_normalised():
    result = org_result(" ９１３３０１００７１６１０５８５２ｆ ")
    assert result.valid, result.as_dict()
    assert result.document["uscc"] == "91330100716105852F"
    result = org_result("9133 0100 7161 0585 2f")
    assert result.valid, result.as_dict()
    assert result.document["uscc"] == "91330100716105852F"


@pytest.mark.parametrize("authority", ["A1", "N2", "N3", "Y1"])
def test_letter_authorities_are_accepted(authority):
    # built with ids.uscc_check_character and ids.org_code_check_character
    code = make_uscc(authority, "420502", "MA4F0K3B")
    assert uscc_codes(code) == []
    # stdnum.cn.uscc wants digits in the first 8 characters: it rejects them
    assert not stdnum_uscc.is_valid(code)


def test_wrong_18th_character_is_checksum():
    for code in REAL_USCCS:
        bad = code[:17] + ("A" if code[17] != "A" else "B")
        assert uscc_codes(bad) == [("uscc", "checksum")], code
        assert not stdnum_uscc.is_valid(bad)


def test_wrong_17th_character_is_uscc_org_checksum():
    code = "91330100716105852F"
    head = code[:16] + "3"  # the GB 11714 check character of 71610585 is 2
    bad = head + ids.uscc_check_character(head)  # the 18th is right for the new 17
    assert bad != code
    assert uscc_codes(bad) == [("uscc", "uscc_org_checksum")]
    # stdnum.cn.uscc does not check the embedded organisation code: it accepts it
    assert stdnum_uscc.is_valid(bad)


@pytest.mark.parametrize("authority", ["E1", "94", "A3", "Y9", "00"])
def test_unknown_authority_is_uscc_authority(authority):
    code = make_uscc(authority, "420502", "MA4F0K3B")
    assert uscc_codes(code) == [("uscc", "uscc_authority")]


@pytest.mark.parametrize("bad", [
    "91330100716105852",  # 17 characters
    "91330100716105852FF",  # 19 characters
    "913301007161058I2F",  # I
    "9133010071610585OF",  # O
    "91330100716105852Z",  # Z
    "9133010071610S852F",  # S
    "91330100716V05852F",  # V
    "9133A100716105852F",  # a letter among the region digits (3-8)
    "91330100-716105852",  # punctuation
])
def test_characters_outside_the_alphabet_are_uscc_format(bad):
    assert uscc_codes(bad) == [("uscc", "uscc_format")]
    assert ids.check_uscc(bad, authorities()) == ("uscc_format",)


def test_uscc_errors_are_catalogued_in_chinese_and_english():
    for code in ("uscc_format", "uscc_org_checksum", "uscc_authority", "checksum"):
        assert code in CATALOGUE
    error = org_result("91330100716105852E").errors[0]
    assert error.message == ("统一社会信用代码校验位错误 / "
                             "Unified social credit code: check character is wrong")
