"""Loading, checking and resolving field standards; overlays; the catalogue."""
import pytest
import yaml

from gridcollect import RECORD_TYPES, CATALOGUE, StandardError, load_standards
from gridcollect.standards import DEFAULT_PATH, SENSITIVITIES, Standards

from conftest import edit_yaml, write_overlay

SPEC_FIELDS = {
    "person": ["id_number", "name", "sex", "birth_date", "ethnicity", "phone", "residence_type",
               "household_region", "house_code", "relationship", "education", "marital_status",
               "political_status", "special_groups"],
    "house": ["house_code", "address", "usage", "owner_id_number", "owner_name", "area",
              "floor", "total_floors", "location"],
    "organization": ["uscc", "name", "legal_rep_name", "legal_rep_id_number", "address",
                     "employees", "phone", "location"],
    "event": ["event_type", "description", "occurred_at", "urgency", "location"],
}
SPEC_REQUIRED = {
    "person": {"id_number", "name", "sex", "birth_date", "ethnicity", "residence_type"},
    "house": {"house_code", "address", "usage"},
    "organization": {"uscc", "name", "address"},
    "event": {"event_type", "description", "occurred_at", "location"},
}
SPEC_KEYS = {"person": "id_number", "house": "house_code", "organization": "uscc", "event": None}


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_every_spec_field_with_metadata(standards, record_type):
    standard = standards.effective(record_type)
    assert list(standard.fields)[: len(SPEC_FIELDS[record_type])] == SPEC_FIELDS[record_type]
    assert {n for n, f in standard.fields.items() if f.required} == SPEC_REQUIRED[record_type]
    assert standard.natural_key == SPEC_KEYS[record_type]
    for spec in standard.fields.values():
        assert spec.label_zh and spec.label_en and spec.sensitivity in SENSITIVITIES
        if spec.code_table:
            assert spec.code_table in standards.code_tables


def test_code_tables_name_their_standards(standards):
    expected = {"gb_t_2261_1": "GB/T 2261.1", "gb_t_2261_2": "GB/T 2261.2",
                "gb_t_3304": "GB/T 3304", "gb_t_4761": "GB/T 4761", "gb_t_4658": "GB/T 4658",
                "gb_t_4762": "GB/T 4762", "gb_t_2260": "GB/T 2260",
                "gb_32100_authority": "GB 32100"}
    for name, standard in expected.items():
        assert standards.code_tables[name].standard.startswith(standard)
    for name in ("residence_type", "house_usage", "event_type", "special_groups", "urgency"):
        assert standards.code_tables[name].codes
    assert list(standards.code_tables["gb_t_2261_1"].codes) == ["0", "1", "2", "9"]
    assert len(standards.code_tables["gb_t_3304"].codes) == 58
    assert standards.code_tables["gb_t_2260"].codes["420502"].since == 1986


def test_overlay_applies_to_cells_under_its_prefix_only(standards):
    city = standards.effective("person")
    inside = standards.effective("person", "420502001002003")
    sibling = standards.effective("person", "420502001003001")
    assert city.version == sibling.version == "2026.1"
    assert inside.version == "2026.1+420502001002.1"
    assert inside.digest != city.digest and sibling.digest == city.digest
    assert inside.fields["phone"].required and not city.fields["phone"].required
    assert "dog_registration" in inside.fields and "dog_registration" not in city.fields
    record = {"id_number": "11010519491231002X", "name": "张三", "sex": "2",
              "birth_date": "1949-12-31", "ethnicity": "01", "residence_type": "1"}
    assert city.validate(record).valid
    assert [(e.field, e.code) for e in inside.validate(record).errors] == [("phone", "required")]
    assert inside.validate({**record, "phone": "13812345678",
                            "dog_registration": "yc-2024-000123"}).valid
    assert not city.validate({**record, "dog_registration": "YC-2024-000123"}).valid


def test_effective_standard_is_cached_and_grid_codes_checked(standards):
    assert standards.effective("house", "420502001002003") is standards.effective(
        "house", "420502001002009")
    with pytest.raises(ValueError):
        standards.effective("person", "4205020010020")
    with pytest.raises(KeyError):
        standards.effective("vehicle")


@pytest.mark.parametrize("change,message", [
    (lambda d: d["fields"]["name"]["rules"].update(maxlength="fifty"), "field name: invalid rules"),
    (lambda d: d["fields"]["sex"].update(code_table="gb_t_9999"), "field sex: unknown code table"),
    (lambda d: d["fields"]["name"].update(sensitivity="top"), "field name: sensitivity"),
    (lambda d: d["fields"]["name"].pop("label"), "field name: needs label"),
    (lambda d: d["fields"]["name"]["rules"].pop("type"), "field name: needs rules"),
    (lambda d: d["fields"]["name"]["rules"].update(check_with="nope"), "field name: invalid rules"),
    (lambda d: d["fields"]["name"]["rules"].update(coerce="nope"), "field name: invalid rules"),
    (lambda d: d["fields"]["name"].update(natural_key=True), "more than one natural key"),
    (lambda d: d.pop("version"), "needs a version"),
])
def test_broken_standard_fails_loudly_naming_file_and_field(standards_folder, change,
                                                             message):
    folder = standards_folder
    edit_yaml(folder / "person.yaml", change)
    with pytest.raises(StandardError) as raised:
        Standards(folder)
    assert "person.yaml" in str(raised.value) and message in str(raised.value)


@pytest.mark.parametrize("rules,loosened", [
    ({"required": False}, "required"),
    ({"type": "integer"}, "type"),
    ({"maxlength": 500}, "maxlength"),
    ({"allowed": ["01", "99"]}, "allowed"),
])
def test_overlay_may_only_tighten(standards_folder, rules, loosened):
    folder = standards_folder
    field = "ethnicity" if "allowed" in rules else "name"
    edit_yaml(folder / "overlays" / "420502001002" / "person.yaml",
          lambda d: d["fields"].update({field: {"rules": rules}}))
    with pytest.raises(StandardError, match=f"only tighten.*{loosened}"):
        Standards(folder)


def test_overlay_folder_must_be_a_prefix(standards_folder):
    folder = standards_folder
    (folder / "overlays" / "42050200100").mkdir()
    with pytest.raises(StandardError, match="42050200100"):
        Standards(folder)


def test_overlay_narrowing_allowed_codes_is_applied(standards_folder):
    folder = standards_folder
    write_overlay(folder, "420502", "house",
        "version: 3\nfields:\n  usage:\n    rules: {allowed: ['1', '2']}\n"
        "  area:\n    rules: {required: true}\n")
    standards = Standards(folder)
    house = standards.effective("house", "420502001002003")
    assert house.version == "2026.1+420502.3"
    record = {"house_code": "420502001002003-012-01-0302", "address": "夷陵大道 1 号",
              "usage": "9"}
    assert sorted((e.field, e.code) for e in house.validate(record).errors) == [
        ("area", "required"), ("usage", "not_in_code_table")]
    assert standards.effective("house", "420503001001001").validate(record).valid


def test_load_standards_defaults_to_the_bundled_folder():
    assert load_standards().path == DEFAULT_PATH
    assert load_standards() is load_standards()


def test_every_message_is_bilingual():
    for code, (zh, en) in CATALOGUE.items():
        assert "{zh}" in zh and "{en}" in en, code


@pytest.mark.parametrize("sensitivity", ["public", "internal"])
def test_a_field_that_may_hold_a_mobile_number_is_personal(standards_folder, sensitivity):
    write_overlay(standards_folder, "420503", "organization",
                  "version: 1\nfields:\n  contact_phone:\n    label: {zh: 联系人电话, en: Contact}\n"
                  f"    sensitivity: {sensitivity}\n"
                  "    rules: {type: string, coerce: phone, check_with: phone}\n")
    with pytest.raises(StandardError, match="mobile number is personal"):
        Standards(standards_folder)


@pytest.mark.parametrize("rules", [
    "{type: list, schema: {type: string, coerce: phone, check_with: mobile}}",
    "{type: dict, schema: {office: {type: string, check_with: phone}}}"])
def test_a_nested_mobile_number_is_personal_too(standards_folder, rules):
    write_overlay(standards_folder, "420503", "organization",
                  "version: 1\nfields:\n  contacts:\n    label: {zh: 联系人, en: Contacts}\n"
                  f"    sensitivity: internal\n    rules: {rules}\n")
    with pytest.raises(StandardError, match="mobile number is personal"):
        Standards(standards_folder)


@pytest.mark.parametrize("rules", [
    "{type: string, coerce: code, check_with: timestamp}",  # another coercer
    "{type: list, schema: {type: string, check_with: timestamp}}"])  # nested, none
def test_a_timestamp_field_is_coerced_to_the_one_form(standards_folder, rules):
    write_overlay(standards_folder, "420503", "event",
                  "version: 1\nfields:\n  reported_at:\n    label: {zh: 上报时间, en: Reported}\n"
                  f"    rules: {rules}\n")
    with pytest.raises(StandardError, match="coerce: timestamp"):
        Standards(standards_folder)


def test_a_rule_the_compiler_lacks_falls_back_to_cerberus(standards_folder):
    folder = standards_folder
    write_overlay(folder, "420503", "person",
        "version: 1\nfields:\n  guardian_phone:\n    label: {zh: 监护人电话, en: Guardian's phone}\n"
        "    sensitivity: personal\n    rules: {type: string, coerce: phone, check_with: mobile,"
        " dependencies: special_groups}\n")
    person = Standards(folder).effective("person", "420503001001001")
    assert person._compiled is None
    record = {"id_number": "11010519491231002X", "name": "张三", "sex": "2",
              "birth_date": "1949-12-31", "ethnicity": "01", "residence_type": "1"}
    assert person.validate(record).valid
    result = person.validate({**record, "guardian_phone": "+86 138 1234 5678"})
    assert [(e.field, e.code) for e in result.errors] == [("guardian_phone", "invalid")]
    valid = person.validate({**record, "guardian_phone": "+86 138 1234 5678",
                             "special_groups": ["留守儿童"]})
    assert valid.valid and valid.document["guardian_phone"] == "13812345678"
    # Cerberus 1.3 raises TypeError on a dict where a list with item rules belongs:
    # the verdict is an error on the record, not a crash
    broken = person.validate({**record, "special_groups": {"type": 1}})
    assert [(e.field, e.code) for e in broken.errors] == [("", "invalid")]


def test_a_regex_with_unicode_digits_is_refused(standards_folder):
    folder = standards_folder
    edit_yaml(folder / "house.yaml",
          lambda d: d["fields"]["address"]["rules"].update(regex=r".*\d+号.*"))
    with pytest.raises(StandardError, match=r"house.yaml: field address: write \[0-9\]"):
        Standards(folder)


@pytest.mark.parametrize("field,rules", [
    ("location", {"schema": {"lat": {"type": "number"}, "lon": {"type": "number"}}}),
    ("location", {"allow_unknown": True}),
    ("usage", {"default": "1"}),
    ("address", {"nullable": True}),
    ("address", {"empty": True}),
    ("area", {"min": 0}),
    ("house_code", {"regex": ".*"}),
])
def test_overlay_loopholes_are_closed(standards_folder, field, rules):
    folder = standards_folder
    write_overlay(folder, "420502", "house",
        yaml.safe_dump({"version": 1, "fields": {field: {"rules": rules}}}))
    with pytest.raises(StandardError, match=f"420502.house.yaml: field {field}: an overlay may"):
        Standards(folder)


def test_clashing_overlays_fail_at_load_not_later(standards_folder):
    folder = standards_folder
    write_overlay(folder, "420502", "person",
        "version: 1\nfields:\n  dog_registration:\n    label: {zh: 养犬, en: Dog}\n"
        "    rules: {type: string}\n")
    # the community overlay (420502001002) defines dog_registration again, with a label
    with pytest.raises(StandardError, match="420502001002.person.yaml: field dog_registration"):
        Standards(folder)


def test_a_key_twice_in_yaml_is_refused(standards_folder):
    folder = standards_folder
    path = folder / "person.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "  name:\n    label: {zh: x, en: x}\n"
                    "    rules: {type: string}\n", encoding="utf-8")
    with pytest.raises(StandardError, match="person.yaml.*'name' appears twice"):
        Standards(folder)


def test_code_years_must_be_years(standards_folder):
    folder = standards_folder
    path = folder / "codes" / "gb_t_2260.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        '"110103": {label: "崇文区", until: 2010}', '"110103": {label: "崇文区", until: "2010"}'),
        encoding="utf-8")
    with pytest.raises(StandardError, match="'110103': since and until must be years"):
        Standards(folder)
