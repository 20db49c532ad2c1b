"""Spreadsheet cell conversion (units of gridcollect.tabular.Converter)."""
import datetime

import pytest

from gridcollect.tabular import Converter, FileError


@pytest.fixture(scope="module")
def person(standards):
    return Converter(standards.effective("person"))


@pytest.fixture(scope="module")
def house(standards):
    return Converter(standards.effective("house"))


@pytest.mark.parametrize("cell,expected", [
    ("1949/12/31", "1949-12-31"), ("1949.1.5", "1949-01-05"), ("1949年1月5日", "1949-01-05"),
    ("１９４９/１/５", "1949-01-05"), (datetime.datetime(1949, 1, 5), "1949-01-05"),
    (datetime.date(1949, 1, 5), "1949-01-05"), ("1949-13-45", "1949-13-45"),
])
def test_local_date_formats_become_iso(person, cell, expected):
    assert person.convert({"birth_date": cell}) == ({"birth_date": expected}, [])


@pytest.mark.parametrize("cell,expected", [
    ("1", "01"), (" 1 ", "01"), (1, "01"), (15.0, "15"), ("01", "01"), ("123", "123"),
])
def test_code_leading_zeros_dropped_by_excel_are_restored(person, cell, expected):
    assert person.convert({"ethnicity": cell}) == ({"ethnicity": expected}, [])


def test_sex_codes_are_not_padded(person):
    assert person.convert({"sex": 1}) == ({"sex": "1"}, [])


@pytest.mark.parametrize("cell,problem", [
    (4.20502198001011e17, "excel_number"),     # a float: digits already lost
    (420502198001011000, "excel_number"),      # rounded to 15 significant digits
    ("4.20502E+17", "excel_number"),           # CSV saved by Excel
    ("4.20502198001011E+17", "excel_number"),
])
def test_ids_excel_stored_as_numbers_are_reported(person, cell, problem):
    assert person.convert({"id_number": cell}) == ({}, [("id_number", problem)])


def test_an_intact_integer_id_is_accepted(person):
    assert person.convert({"id_number": 420502198001011233}) == (
        {"id_number": "420502198001011233"}, [])


@pytest.mark.parametrize("cell,value,problem", [
    ("3", 3, None), ("３", 3, None), ("3.0", 3, None), (3.0, 3, None), ("-1", -1, None),
    ("3.5", None, "not_an_integer"), ("三", None, "not_an_integer"), (True, None, "not_an_integer"),
    (3.5, None, "not_an_integer"),
])
def test_integer_cells(house, cell, value, problem):
    document, problems = house.convert({"floor": cell})
    assert document == ({} if problem else {"floor": value})
    assert problems == ([("floor", problem)] if problem else [])


@pytest.mark.parametrize("cell,value", [("12.5", 12.5), ("12", 12), (".5", 0.5), ("1e2", 100.0)])
def test_number_cells(house, cell, value):
    assert house.convert({"area": cell}) == ({"area": value}, [])


def test_number_cell_that_is_not_a_number(house):
    assert house.convert({"area": "大约80"}) == ({}, [("area", "not_a_number")])


def test_nested_and_list_columns(house, person):
    assert house.convert({"location.lat": "30.7", "location.lon": "111.29"}) == (
        {"location": {"lat": 30.7, "lon": 111.29}}, [])
    assert person.convert({"special_groups": "独居老人；残疾人; "}) == (
        {"special_groups": ["独居老人", "残疾人"]}, [])


def test_labels_name_columns_and_unknown_columns_pass_through(standards):
    person = Converter(standards.effective("person"))
    assert person.convert({"公民身份号码": "11010519491231002X", "Name": "张三", "备注": "x"}) == (
        {"id_number": "11010519491231002X", "name": "张三", "备注": "x"}, [])


def test_two_columns_for_one_field_is_a_file_error(standards):
    converter = Converter(standards.effective("person"))
    converter.convert({"id_number": "1"}, source="a.csv")
    converter.convert({"公民身份号码": "1"}, source="b.csv")  # another file: fine
    with pytest.raises(FileError, match="same field"):
        converter.convert({"公民身份号码": "1"}, source="a.csv")


def test_a_whole_field_and_its_sub_field_in_one_file_is_a_file_error(standards):
    with pytest.raises(FileError, match="same field"):
        Converter(standards.effective("house")).convert({"location": "x", "location.lat": "1"})


@pytest.mark.parametrize("cell,stored", [
    (datetime.time(8, 30), "08:30:00"), (datetime.timedelta(days=1), "1 day, 0:00:00"),
])
def test_odd_excel_cells_in_text_fields_become_text(person, cell, stored):
    assert person.convert({"name": cell}) == ({"name": stored}, [])


def test_integers_too_long_to_convert_are_errors(house):
    assert house.convert({"floor": "9" * 5000}) == ({}, [("floor", "not_an_integer")])
    assert house.convert({"area": "9" * 5000}) == ({}, [("area", "not_a_number")])


def test_xlsx_cells_beyond_the_header_are_kept(tmp_path):
    import openpyxl

    from gridcollect.tabular import read_rows

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["id_number", None, "name"])
    sheet.append(["11010519491231002X", "under no header", "张三", "beyond the header"])
    book.save(tmp_path / "p.xlsx")
    assert list(read_rows(tmp_path / "p.xlsx")) == [
        (0, ["id_number", "", "name"]),
        (2, {"id_number": "11010519491231002X", "(column 2)": "under no header",
             "name": "张三", "(column 4)": "beyond the header"})]


def test_json_lines_with_absurd_numbers_or_nesting_are_row_errors(tmp_path):
    from gridcollect.tabular import read_rows

    path = tmp_path / "p.jsonl"
    path.write_text('{"floor": ' + "9" * 5000 + "}\n" + "[" * 100000 + "]" * 100000 + "\n{}\n",
                    encoding="utf-8")
    rows = list(read_rows(path))
    assert [(row, getattr(raw, "code", raw)) for row, raw in rows] == [
        (1, "not_json"), (2, "not_json"), (3, {})]
