"""The data commands: import legacy spreadsheets, release, export, rebuild."""
import csv
import io
import json

import openpyxl
import pytest
from click.testing import CliRunner
from conftest import GRID_CODE, GRID_FAR, id_number, person

from gridcollect import store
from gridcollect.cli import main

HEADER = ["id_number", "name", "sex", "birth_date", "ethnicity", "residence_type", "phone",
          "special_groups"]


@pytest.fixture
def db_path(app):
    return app.config["DATABASE"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def write_csv(path, rows):
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def row(index, **changes):
    data = person(index, **changes)
    return [data["id_number"], data["name"], data["sex"], data["birth_date"],
            data["ethnicity"], data["residence_type"], data["phone"],
            changes.get("special_groups", "")]


@pytest.fixture
def legacy_file(tmp_path):
    bad = row(3)
    bad[0] = bad[0][:-1] + ("0" if bad[0][-1] != "0" else "1")  # a wrong check character
    return write_csv(tmp_path / "人口台账.csv", [row(1, special_groups="独居老人;残疾人"),
                                                row(2), bad])


def test_import_validates_every_row_and_stores_submissions(legacy_file, db_path, db):
    result = run("import", legacy_file, "--type", "person", "--grid", GRID_CODE,
                 "--worker", "w3", "--db", db_path)
    assert result.exit_code == 1, result.output
    assert "人口台账.csv:4: id_number [checksum]" in result.output  # header: row 1
    assert "3 rows: 2 accepted, 0 already imported, 1 invalid" in result.output
    stored = store.list_submissions(db, prefixes=None, worker="w3")
    assert len(stored) == 2 and {s["state"] for s in stored} == {"pending"}
    assert stored[-1]["data"]["special_groups"] == ["独居老人", "残疾人"]
    # the invalid row counts in monitoring like a phone's invalid attempt
    assert db.execute("SELECT count(*) FROM invalid_attempts").fetchone()[0] == 1


def test_importing_the_same_file_again_stores_nothing_twice(legacy_file, db_path, db):
    run("import", legacy_file, "--type", "person", "--grid", GRID_CODE, "--worker", "w3",
        "--db", db_path)
    again = run("import", legacy_file, "--type", "person", "--grid", GRID_CODE, "--worker",
                "w3", "--db", db_path)
    assert "0 accepted, 2 already imported" in again.output
    assert db.execute("SELECT count(*) FROM submissions").fetchone()[0] == 2


def test_import_confirmed_by_a_supervisor_merges_and_is_audited(legacy_file, db_path, db):
    result = run("import", legacy_file, "--type", "person", "--grid", GRID_CODE, "--worker",
                 "w3", "--confirm-by", "sup", "--db", db_path)
    assert "2 confirmed, 0 in conflict" in result.output
    assert store.get_record(db, "person", id_number(1))["version"] == 1
    [entry] = store.list_audit(db, action="import")
    assert entry["actor"] == "w3" and entry["detail"]["confirmed_by"] == "sup"
    assert entry["detail"]["accepted"] == 2 and entry["detail"]["invalid"] == 1


@pytest.mark.parametrize("args, message", [
    (["--worker", "nobody"], "--worker must name an active worker or admin"),
    (["--worker", "sup"], "--worker must name an active worker or admin"),
    (["--worker", "wfar"], "outside the scope of wfar"),
    (["--worker", "w3", "--confirm-by", "supfar"], "outside the scope of supfar"),
    (["--worker", "w3", "--confirm-by", "analyst"], "--confirm-by must name"),
])
def test_import_refuses_the_wrong_people(legacy_file, db_path, db, args, message):
    result = run("import", legacy_file, "--type", "person", "--grid", GRID_CODE, *args,
                 "--db", db_path)
    assert result.exit_code == 2 and message in result.output
    assert db.execute("SELECT count(*) FROM submissions").fetchone()[0] == 0


def test_import_an_xlsx_sheet(tmp_path, db_path, db):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    sheet.append(row(5))
    workbook.save(tmp_path / "legacy.xlsx")
    result = run("import", tmp_path / "legacy.xlsx", "--type", "person", "--grid", GRID_CODE,
                 "--worker", "w3", "--db", db_path)
    assert result.exit_code == 0, result.output
    assert "1 rows: 1 accepted" in result.output


def test_release_and_export_from_the_command_line(legacy_file, db_path, tmp_path, db):
    run("import", legacy_file, "--type", "person", "--grid", GRID_CODE, "--worker", "w3",
        "--confirm-by", "sup", "--db", db_path)
    made = run("release", "--note", "首次发布", "--db", db_path)
    assert made.exit_code == 0, made.output
    assert made.output.startswith("release 1: person 2, house 0")
    out = tmp_path / "persons.csv"
    exported = run("export", "latest", "person", "-o", out, "--db", db_path)
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert {r["id_number"] for r in rows} == {id_number(1), id_number(2)}
    masked = run("export", "1", "person", "--format", "json", "--masked", "--labels",
                 "--db", db_path)
    records = json.loads(masked.output)
    assert all(r["name"] == "张*" and "special_groups" not in r for r in records)
    assert records[0]["sex.label"] in ("男性", "女性")
    xlsx = tmp_path / "persons.xlsx"
    run("export", "1", "person", "--format", "xlsx", "-o", xlsx, "--db", db_path)
    sheet = openpyxl.load_workbook(xlsx, read_only=True)["person"]
    assert len(list(sheet.iter_rows(values_only=True))) == 3
    assert run("export", "9", "person", "--db", db_path).exit_code == 2


def test_export_before_any_release(db_path):
    result = run("export", "latest", "person", "--db", db_path)
    assert result.exit_code == 2 and "no release yet" in result.output


def test_import_into_a_grid_of_another_street(tmp_path, db_path):
    path = write_csv(tmp_path / "far.csv", [row(7)])
    result = run("import", path, "--type", "person", "--grid", GRID_FAR, "--worker", "wfar",
                 "--db", db_path)
    assert result.exit_code == 0, result.output


def test_a_corrected_file_imports_only_what_is_new(legacy_file, tmp_path, db_path, db):
    run("import", legacy_file, "--type", "person", "--grid", GRID_CODE, "--worker", "w3",
        "--db", db_path)
    fixed = write_csv(tmp_path / "fixed.csv", [row(1, special_groups="独居老人;残疾人"),
                                               row(2), row(3)])
    again = run("import", fixed, "--type", "person", "--grid", GRID_CODE, "--worker", "w3",
                "--db", db_path)
    assert "3 rows: 1 accepted, 2 already imported" in again.output
    assert db.execute("SELECT count(*) FROM submissions").fetchone()[0] == 3


def test_a_file_that_cannot_be_read_whole_stores_nothing(tmp_path, db_path, db):
    path = write_csv(tmp_path / "broken.csv", [row(i) for i in range(1, 700)])
    with open(path, "ab") as handle:
        handle.write(b"\xff\xfe not utf-8\n")
    result = run("import", path, "--type", "person", "--grid", GRID_CODE, "--worker", "w3",
                 "--db", db_path)
    assert result.exit_code == 2 and "not UTF-8" in result.output
    assert db.execute("SELECT count(*) FROM submissions").fetchone()[0] == 0


def test_a_release_follows_the_deployments_standards(legacy_file, tmp_path, db_path,
                                                     standards_folder):
    from conftest import edit_yaml
    edit_yaml(standards_folder / "person.yaml",
              lambda d: d["fields"]["house_code"].update(sensitivity="secret"))
    run("import", legacy_file, "--type", "person", "--grid", GRID_CODE, "--worker", "w3",
        "--confirm-by", "sup", "--db", db_path)
    made = run("release", "--note", "本地标准", "--standards", standards_folder,
               "--release-dir", tmp_path / "out", "--db", db_path)
    assert made.exit_code == 0, made.output
    assert str(tmp_path / "out") in made.output
    masked = json.loads(run("export", "1", "person", "--format", "json", "--masked",
                            "--db", db_path).output)
    assert masked and all("house_code" not in r for r in masked)
