"""Hostile and broken input: a precise verdict or exit 2, never a traceback or lost row."""
import json
import re
import subprocess
import sys
import zipfile

import openpyxl
import pytest

from gridcollect import StandardError, load_standards
from gridcollect.standards import Standards

from conftest import edit_yaml

PERSON = {"id_number": "11010519491231002X", "name": "张三", "sex": "2",
          "birth_date": "1949-12-31", "ethnicity": "01", "residence_type": "1"}
HEADER = ",".join(PERSON)
ROW = ",".join(PERSON.values())


def run(*args):
    done = subprocess.run([sys.executable, "-m", "gridcollect", "validate", *map(str, args)],
                          capture_output=True, text=True, encoding="utf-8")
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.mark.parametrize("text", ["\u3000\u200b\u3000", "\0", "\ud800", "\u202e英秀张", "\x7f",
                                  "\ufeff张三", "张\x1b[31m三"])
def test_free_text_refuses_control_and_invisible_characters(text):
    result = load_standards().effective("person").validate({**PERSON, "name": text})
    assert [(e.field, e.code) for e in result.errors] == [("name", "control_character")]


@pytest.mark.parametrize("text", ["张\u3000三", "Zhāng Sān", "欧阳·娜娜"])
def test_ordinary_names_stay_valid(text):
    assert load_standards().effective("person").validate({**PERSON, "name": text}).valid


def test_multi_line_descriptions_are_text():
    event = {"event_type": "02", "description": "楼道堆放杂物\n存在消防隐患\t请处理",
             "occurred_at": "2026-11-20T09:30:00+08:00", "location": {"lat": 30.7, "lon": 111.29}}
    assert load_standards().effective("event").validate(event).valid


@pytest.mark.parametrize("content,message", [
    (HEADER + "\n" + ROW.replace("张三", '"张三') + "\n" + ROW + "\n", "unexpected end of data"),
    ("", "no header row"),
])
def test_broken_csv_exits_2(tmp_path, content, message):
    path = tmp_path / "p.csv"
    path.write_text(content, encoding="utf-8")
    done = run(path, "--type", "person", "--format", "json")
    assert done.returncode == 2 and message in done.stderr
    assert message in json.loads(done.stdout)["error"]


def test_utf16_csv_gets_the_right_hint(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(HEADER + "\n" + ROW + "\n", encoding="utf-16")
    done = run(path, "--type", "person")
    assert done.returncode == 2 and "UTF-16" in done.stderr and "GBK" not in done.stderr


def _workbook(tmp_path, rows):
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    path = tmp_path / "p.xlsx"
    book.save(path)
    return path


def test_xlsx_with_a_wrong_recorded_size_is_read_whole(tmp_path):
    path = _workbook(tmp_path, [list(PERSON), list(PERSON.values()),
                                list(PERSON.values())[:4] + ["57"] + list(PERSON.values())[5:]])
    damaged = tmp_path / "damaged.xlsx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data, count = re.subn(rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1"/>',
                                      data)
                assert count == 1
            target.writestr(item, data)
    report = json.loads(run(damaged, "--type", "person", "--format", "json").stdout)
    assert (report["total"], report["invalid"]) == (2, 1)


def test_corrupt_xlsx_exits_2(tmp_path):
    path = _workbook(tmp_path, [list(PERSON), list(PERSON.values())])
    damaged = tmp_path / "damaged.xlsx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            target.writestr(item, data[: len(data) // 2] if item.filename.endswith(
                "sheet1.xml") else data)
    done = run(damaged, "--type", "person")
    assert done.returncode == 2 and "not a readable XLSX workbook" in done.stderr
    fake = tmp_path / "fake.xlsx"
    fake.write_text(HEADER + "\n" + ROW + "\n", encoding="utf-8")
    assert run(fake, "--type", "person").returncode == 2


def test_json_lines_joined_with_their_boms(tmp_path):
    path = tmp_path / "p.jsonl"
    line = json.dumps(PERSON, ensure_ascii=False)
    path.write_text("\ufeff" + line + "\n\ufeff" + line + "\n", encoding="utf-8")
    assert json.loads(run(path, "--type", "person", "--format", "json").stdout)["valid"] == 2


def test_every_exit_2_still_prints_json(tmp_path):
    (tmp_path / "folder.csv").mkdir()
    for args in ([tmp_path / "folder.csv"], [tmp_path / "missing.csv"], [tmp_path / "p.txt"],
                 [tmp_path / "folder.csv", "--grid", "12"]):
        done = run(*args, "--type", "person", "--format", "json")
        assert done.returncode == 2 and json.loads(done.stdout)["error"]


def test_lone_surrogates_are_reported_not_crashed_on(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('[{"\\ud800": "x"}]', encoding="utf-8")
    done = run(path, "--type", "person", "--format", "json")
    assert done.returncode == 1
    assert ("\ud800", "unknown_field") in [
        (e["field"], e["code"]) for e in json.loads(done.stdout)["rows"][0]["errors"]]


def test_a_header_cannot_forge_report_lines(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(HEADER + ',"x\nforged.csv:9: ok"\n' + ROW + ",1\n", encoding="utf-8")
    done = run(path, "--type", "person")
    assert not any(line.startswith("forged.csv") for line in done.stdout.splitlines())
    assert "x\\nforged.csv" in done.stdout


def test_two_columns_for_one_field_stop_before_any_row(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(HEADER + ",公民身份号码\n" + (ROW + ",\n") * 3, encoding="utf-8")
    done = run(path, "--type", "person")
    assert done.returncode == 2 and "same field" in done.stderr and done.stdout == ""


@pytest.mark.parametrize("file,change,message", [
    ("house.yaml", lambda d: d["fields"]["address"]["rules"].update(regex="(["), "invalid regex"),
    ("house.yaml", lambda d: d["fields"]["area"]["rules"].update(min="a"), "min must be a number"),
    ("house.yaml", lambda d: d["fields"].update({123: d["fields"]["area"]}), "field name"),
    ("house.yaml", lambda d: d.update(fieldz={}), "unknown keys"),
    ("codes/urgency.yaml", lambda d: d.update(codes=["1", "2"]), "must be mappings"),
    ("codes/urgency.yaml", lambda d: d.update(title="oops"), "must be mappings"),
])
def test_broken_standards_fail_loudly_and_the_cli_exits_2(tmp_path, standards_folder, file,
                                                          change, message):
    folder = standards_folder
    edit_yaml(folder / file, change)
    with pytest.raises(StandardError, match=message):
        Standards(folder)
    path = tmp_path / "p.csv"
    path.write_text(HEADER + "\n" + ROW + "\n", encoding="utf-8")
    done = run(path, "--type", "person", "--standards", folder)
    assert done.returncode == 2 and message in done.stderr
