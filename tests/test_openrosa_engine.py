"""The generated XForms in a real XForms engine that no one here wrote: JavaRosa, the
engine inside ODK Collect, as pyxform ships it in ODK Validate. Every form of a grid
(overlays included) passes ODK Validate; then each record of a corpus is filled into
the form by tests/javarosa/Check.java, and the answers JavaRosa refuses (its required
fields, constraints and choices) must be exactly the fields the server refuses.
Java comes with the machine (OpenJDK); outside CI a machine without it skips these."""
import os
import pathlib
import shutil
import subprocess

import pyxform
import pytest
from pyxform.xls2xform import convert

from conftest import GRID_CODE, NOW, id_number, person
from gridcollect.openrosa import xlsform
from gridcollect.standards import RECORD_TYPES

JAR = (pathlib.Path(pyxform.__file__).parent / "validators" / "odk_validate" / "bin"
       / "ODK_Validate.jar")
CHECK = pathlib.Path(__file__).parent / "javarosa" / "Check.java"


@pytest.fixture(scope="module")
def javarosa(tmp_path_factory):
    if not (shutil.which("java") and shutil.which("javac")):
        if os.environ.get("CI"):
            pytest.fail("Java (javac) is needed for the XForms engine tests")
        pytest.skip("no Java here; CI runs these always")
    out = tmp_path_factory.mktemp("javarosa")
    subprocess.run(["javac", "-cp", str(JAR), "-d", str(out), str(CHECK)], check=True,
                   capture_output=True, timeout=300)
    return out


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_every_form_passes_odk_validate(standards, grid, record_type, javarosa):
    """pyxform runs ODK Validate (JavaRosa's parser) and raises on any error."""
    result = convert(xlsform=xlsform.build(standards, record_type, grid), form_name="data",
                     validate=True)
    assert result.xform.startswith("<?xml")


def _tsv(value) -> str:
    if isinstance(value, list):
        return " ".join(value)
    if isinstance(value, dict):
        return f"{value['lat']} {value['lon']}"
    return str(value)


def _engine(javarosa, tmp_path, form_xml: str, corpus: list) -> list:
    path = tmp_path / "form.xml"
    path.write_text(form_xml, encoding="utf-8")
    records = "".join("".join(f"{k}\t{_tsv(v)}\n" for k, v in record.items()) + "\n"
                      for record in corpus)
    run = subprocess.run(["java", "-cp", f"{JAR}{os.pathsep}{javarosa}", "Check", str(path)],
                         input=records, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert len(lines) == len(corpus), run.stdout
    return [set() if line == "ok" else {part.split(":")[0] for part in line.split()}
            for line in lines]


def _server(standards, grid, record_type, corpus) -> list:
    standard = standards.effective(record_type, grid.code)
    return [{error.field.split(".")[0] for error in standard.validate(record, grid, NOW).errors}
            for record in corpus]


def _with(record, **changes):
    out = {**record, **changes}
    return {k: v for k, v in out.items() if v is not None}


def _wrong_check(number: str) -> str:
    return number[:-1] + ("0" if number[-1] != "0" else "1")


PERSONS = [
    person(1), person(2, special_groups=["独居老人", "残疾人"]),
    _with(person(3), id_number=_wrong_check(id_number(3))),  # the GB 11643 check character
    _with(person(4), name=None),  # required
    _with(person(5), residence_type=None, ethnicity=None),
    _with(person(6), ethnicity="99"),  # not a code of GB/T 3304
    _with(person(7), special_groups=["独居老人", "外星人"]),
    _with(person(8), phone="12345678901"),  # not a mobile number
    _with(person(9), phone=None),  # required in this community (its overlay)
    _with(person(10), house_code="42050200100200-012-01-0302"),  # wrong pattern
    _with(person(11), dog_registration="YC-24-1"),  # the overlay's own field
    _with(person(12), id_number=id_number(12)[:17] + "x"),  # x is read as X: still wrong?
    _with(person(13), name="张" * 51),  # too long
]
HOUSE = {"house_code": f"{GRID_CODE}-012-01-0302", "address": "演示街道12栋1单元302室",
         "usage": "1", "area": 89.5, "floor": 3, "total_floors": 7,
         "location": {"lat": 30.70, "lon": 111.29}}
HOUSES = [
    HOUSE, _with(HOUSE, floor=9),  # above the total floors
    _with(HOUSE, area=0),  # below the minimum
    _with(HOUSE, usage="5"),  # not a code
    _with(HOUSE, address=None), _with(HOUSE, total_floors=None, floor=300),  # the maximum
    _with(HOUSE, house_code="420502001002004-012-01-0302"),  # another grid's house
    _with(HOUSE, location={"lat": 31.5, "lon": 111.29}),  # far outside the grid
    _with(HOUSE, owner_id_number=_wrong_check(id_number(20))),
]


@pytest.mark.parametrize("record_type, corpus", [("person", PERSONS), ("house", HOUSES)])
def test_javarosa_refuses_what_the_server_refuses(standards, grid, javarosa, tmp_path,
                                                  record_type, corpus):
    form = convert(xlsform=xlsform.build(standards, record_type, grid, lookup=False),
                   form_name="data").xform
    engine = _engine(javarosa, tmp_path, form, corpus)
    server = _server(standards, grid, record_type, corpus)
    assert engine == server
    assert sum(map(bool, server)) >= len(corpus) - 2  # the corpus is mostly refusals
    assert not server[0] and not engine[0]  # and the first record is valid on both sides


def test_the_forms_check_character_is_the_servers():
    """The XPath constraint's weights and characters (xlsform.ID_WEIGHTS, ID_CHECK)
    give ISO 7064 MOD 11-2 as python-stdnum computes it for the server."""
    import random

    from gridcollect.ids import id_check_character
    chooser = random.Random(11643)
    for _ in range(2000):
        body = "".join(chooser.choice("0123456789") for _ in range(17))
        total = sum(int(c) * w for c, w in zip(body, xlsform.ID_WEIGHTS))
        assert xlsform.ID_CHECK[total % 11] == id_check_character(body + "?")  # 18 chars
