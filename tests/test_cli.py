"""``gridcollect validate`` (SPEC section 7), run as a real subprocess.

Files are written to ``tmp_path``; the JSON report is parsed and the exact
``(field, code)`` pairs of each row are asserted.
"""
import csv
import datetime
import json
import os
import subprocess
import sys

import openpyxl
import pytest
from stdnum.iso7064 import mod_11_2

from gridcollect import CATALOGUE
from gridcollect.filecheck import PARALLEL_ABOVE_BYTES


def with_check(body17):
    return body17 + mod_11_2.calc_check_digit(body17)


MALE_ID = with_check("42050219870101101")  # 420502198701011015, born 1987-01-01
FEMALE_ID = "11010519491231002X"  # GB 11643-1999's example, born 1949-12-31
PERSON_HEADER = ["id_number", "name", "sex", "birth_date", "ethnicity", "residence_type"]
SOUND_PERSON = [MALE_ID, "张三", "1", "1987-01-01", "01", "1"]
HOUSE_HEADER = ["house_code", "address", "usage", "floor", "total_floors", "area",
                "location.lat", "location.lon"]
SOUND_HOUSE = ["420502001002003-012-01-0302", "西陵区夷陵大道 12 号", "1", "3", "6", "85.5",
               "30.70", "111.29"]


def gridcollect(*args):
    return subprocess.run([sys.executable, "-m", "gridcollect", *map(str, args)],
                          capture_output=True, text=True, encoding="utf-8", timeout=120)


def validate_json(*args):
    """Run ``validate --format json --rows data`` (rows counted from the first record:
    tests/test_newcomer.py holds the default, a spreadsheet's numbers); return (exit
    code, parsed report)."""
    proc = gridcollect("validate", *args, "--format", "json", "--rows", "data")
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    check_report_shape(report)
    assert proc.returncode == (1 if report["invalid"] else 0)
    return proc.returncode, report


def check_report_shape(report):
    assert set(report) == {"total", "valid", "invalid", "rows"}
    assert report["total"] == len(report["rows"]) == report["valid"] + report["invalid"]
    assert report["valid"] == sum(r["valid"] for r in report["rows"])
    for row in report["rows"]:
        assert set(row) == {"file", "row", "valid", "errors"}
        assert isinstance(row["row"], int) and row["row"] >= 1
        assert row["valid"] == (not row["errors"])
        for error in row["errors"]:
            assert set(error) == {"field", "code", "message"}
            assert error["code"] in CATALOGUE
            assert " / " in error["message"]


def verdicts(report):
    """``{row: [(field, code), ...]}`` for every row of the report."""
    return {r["row"]: [(e["field"], e["code"]) for e in r["errors"]] for r in report["rows"]}


def write_csv(path, header, rows, encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_xlsx(path, header, rows):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def usage_error(proc):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc.stderr


# --- formats -------------------------------------------------------------------------------


def test_csv_with_and_without_bom(tmp_path):
    rows = [SOUND_PERSON, [FEMALE_ID, "李四", "1", "1949-12-31", "01", "1"]]
    bom = write_csv(tmp_path / "bom.csv", PERSON_HEADER, rows, encoding="utf-8-sig")
    plain = write_csv(tmp_path / "plain.csv", PERSON_HEADER, rows)
    assert bom.read_bytes().startswith(b"\xef\xbb\xbf")
    assert not plain.read_bytes().startswith(b"\xef\xbb\xbf")
    code, report = validate_json(bom, plain, "--type", "person")
    assert code == 1
    assert (report["total"], report["valid"], report["invalid"]) == (4, 2, 2)
    # one report, files in the order given, rows numbered per file
    assert [(r["file"], r["row"], [(e["field"], e["code"]) for e in r["errors"]])
            for r in report["rows"]] == [
        (str(bom), 1, []), (str(bom), 2, [("sex", "sex_mismatch")]),
        (str(plain), 1, []), (str(plain), 2, [("sex", "sex_mismatch")])]
    assert report["rows"][1]["errors"][0]["message"] == (
        "性别与公民身份号码第17位不一致 / Sex: does not agree with the 17th digit of the ID number")


def test_all_valid_exits_0(tmp_path):
    path = write_csv(tmp_path / "people.csv", PERSON_HEADER,
                     [SOUND_PERSON, [FEMALE_ID.lower(), "李四", "2", "1949-12-31", "01", "2"]])
    code, report = validate_json(path, "--type", "person")
    assert code == 0
    assert verdicts(report) == {1: [], 2: []}
    assert (report["total"], report["valid"], report["invalid"]) == (2, 2, 0)


def test_xlsx_cells_are_converted(tmp_path):
    path = write_xlsx(tmp_path / "people.xlsx", PERSON_HEADER, [
        # ethnicity 1 and sex 1 stored as numbers, the birth date as an Excel date
        [MALE_ID, "张三", 1, datetime.datetime(1987, 1, 1), 1, 1],
        # an ID Excel turned into a number: its last digits are gone
        [4.20502198701011e17, "李四", "1", "1987-01-01", "01", "1"],
        [FEMALE_ID, "王五", 2, "1949-12-31", 57, 2],
    ])
    code, report = validate_json(path, "--type", "person")
    assert code == 1
    assert verdicts(report) == {
        1: [],
        2: [("id_number", "excel_number")],
        3: [("ethnicity", "not_in_code_table")],
    }


def test_xlsx_house_numbers(tmp_path):
    path = write_xlsx(tmp_path / "houses.xlsx", HOUSE_HEADER, [
        ["420502001002003-012-01-0302", "西陵区夷陵大道 12 号", 1, 3.0, 6, 85.5, 30.70, 111.29],
        ["420502001002003-012-01-0402", "西陵区夷陵大道 12 号", "2", 3.5, 6.0, 0, 30.70, 111.29],
        ["420502001002003-012-01-0502", "西陵区夷陵大道 12 号", "2", 8, 6, "abc", 30.70, 111.29],
    ])
    code, report = validate_json(path, "--type", "house", "--grid", "420502001002003")
    assert verdicts(report) == {
        1: [],
        2: [("floor", "not_an_integer"), ("area", "too_small")],
        3: [("area", "not_a_number"), ("floor", "floor_above_total")],
    }


def test_json_array(tmp_path):
    path = tmp_path / "people.json"
    path.write_text(json.dumps([
        dict(zip(PERSON_HEADER, SOUND_PERSON)),
        {**dict(zip(PERSON_HEADER, SOUND_PERSON)), "name": None},
        "not a record",
        # JSON is typed: values are not converted as spreadsheet cells are
        {**dict(zip(PERSON_HEADER, SOUND_PERSON)), "ethnicity": 1},
        {**dict(zip(PERSON_HEADER, SOUND_PERSON)), "special_groups": ["独居老人", "低保对象"],
         "phone": "+86 138 1234 5678"},
    ], ensure_ascii=False), encoding="utf-8")
    code, report = validate_json(path, "--type", "person")
    assert code == 1
    assert verdicts(report) == {
        1: [],
        2: [("name", "null")],
        3: [("", "type")],
        4: [("ethnicity", "type")],
        5: [],
    }
    assert report["rows"][2]["errors"][0]["message"] == "记录类型错误 / Record: wrong type"


def test_json_lines_with_a_bad_line(tmp_path):
    sound = json.dumps(dict(zip(PERSON_HEADER, SOUND_PERSON)), ensure_ascii=False)
    path = tmp_path / "people.jsonl"
    path.write_text("\n".join([
        sound,
        '{"id_number": "420502198701011015", "name": "张三"',  # cut off
        "",  # a blank line is no record, but keeps its number: row = line number
        "[1, 2]",
        sound.replace('"01"', '"57"'),
        sound,
    ]) + "\n", encoding="utf-8")
    code, report = validate_json(path, "--type", "person")
    assert code == 1
    assert verdicts(report) == {
        1: [],
        2: [("", "not_json")],
        4: [("", "type")],
        5: [("ethnicity", "not_in_code_table")],
        6: [],
    }
    assert report["rows"][1]["errors"][0]["message"] == "记录不是有效的 JSON / Record: not valid JSON"


def test_text_report(tmp_path):
    path = write_csv(tmp_path / "people.csv", PERSON_HEADER + ["phone"], [
        SOUND_PERSON + ["13812345678"],
        [MALE_ID[:17] + "0", "张三", "1", "1987-01-01", "01", "1", "13812345678"],
    ])
    proc = gridcollect("validate", path, "--type", "person", "--grid", "420502001002003")
    assert proc.returncode == 1
    # the summary names the effective standard: city-wide plus the overlay; the row is
    # the spreadsheet's (header row 1)
    assert proc.stdout.splitlines() == [
        f"{path}:3: id_number [checksum] 公民身份号码校验位错误 / "
        "Citizen ID number: check character is wrong",
        "2 rows: 1 valid, 1 invalid (standard person 2026.1+420502001002.1)",
    ]


# --- cells -----------------------------------------------------------------------------------


def test_nested_location_columns_and_grid(tmp_path):
    path = write_csv(tmp_path / "houses.csv", HOUSE_HEADER, [
        SOUND_HOUSE,
        SOUND_HOUSE[:6] + ["111.29", "30.70"],  # lat and lon swapped
        SOUND_HOUSE[:6] + ["30.70", ""],  # lon left empty
        SOUND_HOUSE[:6] + ["北纬30度", "111.29"],
        SOUND_HOUSE[:6] + ["", ""],  # no location at all: optional for houses
        ["420502001002004-012-01-0302"] + SOUND_HOUSE[1:],  # a house of the next grid
    ])
    code, report = validate_json(path, "--type", "house", "--grid", "420502001002003")
    assert verdicts(report) == {
        1: [],
        2: [("location.lat", "too_large"), ("location.lon", "too_small")],
        3: [("location.lon", "required")],
        4: [("location.lat", "not_a_number")],
        5: [],
        6: [("house_code", "house_code_grid")],
    }


def test_both_location_cells_unreadable_gives_no_extra_error(tmp_path):
    # location is required for events; both its cells are there, just not
    # numbers: the two conversion errors explain it, "location missing" does not
    path = write_csv(tmp_path / "events.csv",
                     ["event_type", "description", "occurred_at", "location.lat", "location.lon"],
                     [["02", "楼道堆放杂物，存在消防隐患", "2025-06-01T09:30:00+08:00", "abc", "xyz"]])
    code, report = validate_json(path, "--type", "event")
    assert verdicts(report) == {
        1: [("location.lat", "not_a_number"), ("location.lon", "not_a_number")]}


def test_list_field_separated_by_semicolons(tmp_path):
    header = PERSON_HEADER + ["special_groups"]
    path = write_csv(tmp_path / "people.csv", header, [
        SOUND_PERSON + ["独居老人;残疾人"],
        SOUND_PERSON + [" 独居老人 ； 低保对象 "],  # full-width semicolon, spaces
        SOUND_PERSON + ["退役军人"],
        SOUND_PERSON + ["独居老人;外星人"],
    ])
    code, report = validate_json(path, "--type", "person")
    assert verdicts(report) == {
        1: [], 2: [], 3: [], 4: [("special_groups", "not_in_code_table")]}


def test_empty_cells_are_absent(tmp_path):
    header = PERSON_HEADER + ["phone", "household_region", "education", "昵称"]
    path = write_csv(tmp_path / "people.csv", header, [
        SOUND_PERSON + ["", "", "", ""],  # optional and unknown columns left empty: fine
        [MALE_ID, "", "1", "1987-01-01", "01", "1", "13812345678", "420502", "21", ""],
        [MALE_ID, "   ", "1", "1987-01-01", "01", "1", "", "", "", ""],
        ["", "张三", "1", "1987-01-01", "", "1", "", "", "", ""],
        SOUND_PERSON + ["", "", "", "小张"],  # a column the standard does not know
    ])
    code, report = validate_json(path, "--type", "person")
    assert verdicts(report) == {
        1: [],
        2: [("name", "required")],
        3: [("name", "required")],
        4: [("id_number", "required"), ("ethnicity", "required")],
        5: [("昵称", "unknown_field")],
    }


INTEGER_CELLS = [  # floor, total_floors, the row's errors
    ("3", "6", []),
    ("3.0", "6", []),
    (" ５ ", "6", []),  # full-width, spaces
    ("-1", "6", []),
    ("three", "6", [("floor", "not_an_integer")]),  # and nothing else about floor
    ("3.5", "6", [("floor", "not_an_integer")]),
    ("1e3", "6", [("floor", "not_an_integer")]),
    ("9", "six", [("total_floors", "not_an_integer")]),  # floor has no total to exceed
    ("9", "6", [("floor", "floor_above_total")]),
]


def test_integer_cells(tmp_path):
    rows = [SOUND_HOUSE[:3] + [floor, total] + SOUND_HOUSE[5:] for floor, total, _ in INTEGER_CELLS]
    path = write_csv(tmp_path / "houses.csv", HOUSE_HEADER, rows)
    code, report = validate_json(path, "--type", "house")
    assert verdicts(report) == {n: errors for n, (_, _, errors) in enumerate(INTEGER_CELLS, 1)}


def test_csv_damaged_by_excel(tmp_path):
    header = PERSON_HEADER + ["relationship"]
    path = write_csv(tmp_path / "people.csv", header, [
        SOUND_PERSON[:4] + ["1", "1", "2"],  # Excel wrote 01 as 1 and 02 as 2
        SOUND_PERSON[:4] + ["57", "1", "2"],
        ["4.20502198701011E+17"] + SOUND_PERSON[1:] + ["02"],  # the ID as a number
    ])
    code, report = validate_json(path, "--type", "person")
    assert verdicts(report) == {1: [], 2: [("ethnicity", "not_in_code_table")],
                                3: [("id_number", "excel_number")]}


def test_chinese_and_english_label_headers(tmp_path):
    chinese = write_csv(tmp_path / "人口.csv",
                        ["公民身份号码", "姓名", "性别", "出生日期", "民族", "人口类型", "联系电话"],
                        [SOUND_PERSON + ["13812345678"], SOUND_PERSON + ["12012345678"]])
    english = write_csv(tmp_path / "people.csv",
                        ["Citizen ID number", "Name", "Sex", "Birth date", "Ethnicity",
                         "Residence type"], [SOUND_PERSON])
    houses = write_csv(tmp_path / "房屋.csv",
                       ["房屋编码", "详细地址", "房屋用途", "所在楼层", "总层数", "位置.lat", "位置.lon"],
                       [SOUND_HOUSE[:5] + SOUND_HOUSE[6:]])
    code, report = validate_json(chinese, english, "--type", "person")
    assert [(r["file"], r["row"]) for r in report["rows"]] == [
        (str(chinese), 1), (str(chinese), 2), (str(english), 1)]
    assert [[(e["field"], e["code"]) for e in r["errors"]] for r in report["rows"]] == [
        [], [("phone", "mobile")], []]
    code, report = validate_json(houses, "--type", "house")
    assert verdicts(report) == {1: []}


def test_one_field_in_two_columns_is_a_file_error(tmp_path):
    # "id_number" and its label 公民身份号码 are the same field: one of the two
    # values must not silently win (a repeated column name is already refused)
    path = write_csv(tmp_path / "people.csv", PERSON_HEADER + ["公民身份号码"],
                     [SOUND_PERSON + [FEMALE_ID]])
    usage_error(gridcollect("validate", path, "--type", "person", "--format", "json"))


def test_repeated_column_is_a_file_error(tmp_path):
    path = write_csv(tmp_path / "people.csv", PERSON_HEADER + ["name"], [SOUND_PERSON + ["李四"]])
    assert "name" in usage_error(gridcollect("validate", path, "--type", "person"))


# --- grids and overlays ------------------------------------------------------------------------


def test_grid_applies_its_overlay(tmp_path):
    header = PERSON_HEADER + ["phone", "dog_registration"]
    path = write_csv(tmp_path / "people.csv", header, [
        SOUND_PERSON + ["13812345678", "YC-2024-000123"],
        SOUND_PERSON + ["", ""],  # the overlay makes phone required
        SOUND_PERSON + ["13812345678", "YC-24-123"],
    ])
    code, report = validate_json(path, "--type", "person", "--grid", "420502001002003")
    assert code == 1
    assert verdicts(report) == {
        1: [], 2: [("phone", "required")], 3: [("dog_registration", "format")]}
    # without the grid, or in another community, neither rule exists
    code, report = validate_json(path, "--type", "person")
    assert verdicts(report) == {1: [("dog_registration", "unknown_field")], 2: [],
                                3: [("dog_registration", "unknown_field")]}
    code, report = validate_json(path, "--type", "person", "--grid", "420502001003001")
    assert verdicts(report)[2] == []


# --- usage and file errors -------------------------------------------------------------------


def test_missing_file_exits_2(tmp_path):
    stderr = usage_error(gridcollect("validate", tmp_path / "nowhere.csv", "--type", "person"))
    assert "nowhere.csv" in stderr


def test_unknown_extension_exits_2(tmp_path):
    path = tmp_path / "people.txt"
    path.write_text(",".join(PERSON_HEADER) + "\n", encoding="utf-8")
    stderr = usage_error(gridcollect("validate", path, "--type", "person"))
    assert "people.txt" in stderr and ".csv" in stderr


@pytest.mark.parametrize("grid", ["42050", "42050200100200"])
def test_bad_grid_exits_2(tmp_path, grid):
    path = write_csv(tmp_path / "people.csv", PERSON_HEADER, [SOUND_PERSON])
    assert "--grid" in usage_error(gridcollect("validate", path, "--type", "person",
                                               "--grid", grid))


def test_unknown_record_type_exits_2(tmp_path):
    path = write_csv(tmp_path / "people.csv", PERSON_HEADER, [SOUND_PERSON])
    assert "people" in usage_error(gridcollect("validate", path, "--type", "people"))


def test_gbk_csv_exits_2_and_mentions_utf8(tmp_path):
    path = write_csv(tmp_path / "people.csv", ["公民身份号码", "姓名", "性别", "出生日期", "民族", "人口类型"],
                     [SOUND_PERSON], encoding="gbk")
    stderr = usage_error(gridcollect("validate", path, "--type", "person", "--format", "json"))
    assert "UTF-8" in stderr


def test_json_that_is_not_an_array_exits_2(tmp_path):
    path = tmp_path / "people.json"
    path.write_text('{"id_number": "11010519491231002X"}', encoding="utf-8")
    assert "array" in usage_error(gridcollect("validate", path, "--type", "person"))


def test_help_exits_0():
    proc = gridcollect("validate", "--help")
    assert proc.returncode == 0
    for option in ("--type", "--grid", "--standards", "--format"):
        assert option in proc.stdout


# --- big files ---------------------------------------------------------------------------------


def test_big_csv_in_parallel_gives_the_same_report(tmp_path):
    header = PERSON_HEADER + ["phone"]
    rows, expected_invalid = [], []
    for i in range(40_000):
        year, month, day = 1950 + i % 60, 1 + i % 12, 1 + i % 28
        id_number = with_check(f"420502{year:04d}{month:02d}{day:02d}{i % 1000:03d}")
        sex = "1" if int(id_number[16]) % 2 else "2"
        bad_sex, bad_phone, bad_ethnicity = i % 7 == 3, i % 11 == 0, i % 13 == 5
        rows.append([id_number, f"居民{i}", ("2" if sex == "1" else "1") if bad_sex else sex,
                     f"{year:04d}-{month:02d}-{day:02d}", "57" if bad_ethnicity else "01", "1",
                     "12012345678" if bad_phone else "13812345678"])
        if bad_sex or bad_phone or bad_ethnicity:
            expected_invalid.append(i + 2)  # the spreadsheet's row: the header is row 1
    path = write_csv(tmp_path / "big.csv", header, rows)
    assert os.path.getsize(path) > PARALLEL_ABOVE_BYTES  # the multiprocessing path

    # both at once, to keep the suite fast
    command = [sys.executable, "-m", "gridcollect", "validate", str(path), "--type", "person",
               "--format", "json", "--jobs"]
    runs = [subprocess.Popen(command + [jobs], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, encoding="utf-8") for jobs in ("4", "1")]
    (parallel, parallel_err), (serial, serial_err) = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [1, 1], (parallel_err, serial_err)
    assert parallel == serial
    report = json.loads(parallel)
    assert report["total"] == 40_000
    assert [r["row"] for r in report["rows"]] == list(range(2, 40_002))
    assert [r["row"] for r in report["rows"] if not r["valid"]] == expected_invalid
    assert report["invalid"] == len(expected_invalid)
    row = report["rows"][3]  # i = 3: sex flipped
    assert [(e["field"], e["code"]) for e in row["errors"]] == [("sex", "sex_mismatch")]
    row = report["rows"][0]  # i = 0: bad phone
    assert [(e["field"], e["code"]) for e in row["errors"]] == [("phone", "mobile")]
