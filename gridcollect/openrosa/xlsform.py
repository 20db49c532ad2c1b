"""The effective standard of a grid as an XLSForm (survey, choices, settings), built in
memory: what ODK Collect, KoboCollect and Enketo get (through pyxform, ``xforms``)
and what ``gridcollect xlsform`` writes for a city to read and adapt.

Every rule that XPath can say becomes a constraint with the standard's own message
(the catalogue's, in Chinese and English): required fields, lengths, patterns,
ranges, code tables as choices, the GB 11643 check character, dates not in the
future, a floor not above the total, a location inside the grid's bounding box.
The server checks everything again on receipt (the exact grid polygon, the sex and
birth date against the ID number, the GB 32100 check characters): the phone's
checks are there to catch mistakes while the worker is still at the door.
"""
from __future__ import annotations

import io
import re

from ..errors import message

ZH, EN = "中文 (zh)", "English (en)"
LANGUAGES = (ZH, EN)
MAX_CHOICES = 400  # a longer code table (GB/T 2260's 6,885 regions) is typed, not picked
# GB 11643: weights of the first 17 digits, and the check character of the sum mod 11
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
# typed as people type them (spaces, dashes, +86): the server normalises the same way
MOBILE = "^(\\+?86)?1[3-9][0-9]{9}$"
PHONE = "^(\\+?86)?(1[3-9][0-9]{9}|0[0-9]{9,11})$"
AS_TYPED = "translate(., ' -', '')"
# the form's own questions, named so that no field of a standard can be one of them
START, END, BASE_VERSION, PHOTO = "gc_start", "gc_end", "gc_base_version", "gc_photo"


def gb11643_constraint() -> str:
    """The GB 11643 check character in ODK's XPath: 17 digits, then the character that
    the weighted sum mod 11 picks from '10X98765432' (a lower-case x is read as X).
    ODK's ``substr(s, start, end)`` counts from 0 and stops before ``end``."""
    total = " + ".join(f"substr(., {i}, {i + 1}) * {w}" for i, w in enumerate(ID_WEIGHTS))
    return (f"regex(., '^[0-9]{{17}}[0-9Xx]$') and substr('{ID_CHECK}', ({total}) mod 11,"
            f" (({total}) mod 11) + 1) = translate(substr(., 17, 18), 'x', 'X')")


def _labels(prefix: str, zh: str, en: str) -> dict:
    return {f"{prefix}::{ZH}": zh, f"{prefix}::{EN}": en}


def _msg(spec, code: str) -> dict:
    text = message(code, spec.label_zh, spec.label_en)
    zh, _, en = text.partition(" / ")
    return _labels("constraint_message", zh, en or zh)


def _regex(pattern: str) -> str:
    """A Cerberus regex (matched whole) as an XPath ``regex()`` argument."""
    return "'^(" + pattern.replace("'", "") + ")$'"


def _question(spec, standard, standards, grid) -> tuple:
    """(survey row, choice lists it needs)."""
    rules, checks = spec.rules, set(spec.checks)
    row = {"name": spec.name, **_labels("label", spec.label_zh, spec.label_en)}
    if spec.description:
        row.update(_labels("hint", spec.description, spec.description))
    if spec.required:
        row["required"] = "yes"
        row.update(_labels("required_message", *message(
            "required", spec.label_zh, spec.label_en).split(" / ", 1)))
    constraints, code = [], "invalid"
    lists = {}
    table = standards.code_tables.get(spec.code_table) if spec.code_table else None
    kind = spec.type
    if kind == "list":
        if table is not None and not table.checked_by and len(table.codes) <= MAX_CHOICES:
            row["type"] = f"select_multiple {table.name}"
            lists[table.name] = table
        else:
            row["type"] = "text"
    elif kind == "dict" and {"lat", "lon"} <= set(rules.get("schema", {})):
        row["type"] = "geopoint"
        lat, lon = rules["schema"]["lat"], rules["schema"]["lon"]
        bounds = [(0, lat.get("min"), lat.get("max")), (1, lon.get("min"), lon.get("max"))]
        code = "too_small"
        if "in_grid" in checks and grid is not None and grid.geometry is not None:
            minx, miny, maxx, maxy = grid.geometry.bounds
            bounds = [(0, miny, maxy), (1, minx, maxx)]  # the grid's box: inside it, or
            code = "outside_grid"  # the server's exact polygon test refuses it later
        for axis, low, high in bounds:
            if low is not None:
                constraints.append(f"selected-at(., {axis}) >= {low}")
            if high is not None:
                constraints.append(f"selected-at(., {axis}) <= {high}")
    elif kind == "integer":
        row["type"] = "integer"
    elif kind in ("number", "float"):
        row["type"] = "decimal"
    elif kind == "boolean":
        row["type"] = "select_one yes_no"
        lists["yes_no"] = None
    elif table is not None and not table.checked_by and len(table.codes) <= MAX_CHOICES:
        row["type"] = f"select_one {table.name}"
        lists[table.name] = table
        code = "not_in_code_table"
    elif "date" in checks:
        row["type"] = "date"
    elif "timestamp" in checks:
        row["type"] = "dateTime"
    else:
        row["type"] = "text"
    if kind in ("integer", "number", "float"):
        if rules.get("min") is not None:
            constraints.append(f". >= {rules['min']}")
            code = "too_small"
        if rules.get("max") is not None:
            constraints.append(f". <= {rules['max']}")
        if "floor_within_total" in checks and "total_floors" in standard.fields:
            constraints.append("(${total_floors} = '' or . <= ${total_floors})")
            code = "floor_above_total"
    if row["type"] == "text":
        if rules.get("minlength"):
            constraints.append(f"string-length(.) >= {rules['minlength']}")
            code = "too_short"
        if rules.get("maxlength"):
            constraints.append(f"string-length(.) <= {rules['maxlength']}")
            code = "too_long" if code == "invalid" else code
        if rules.get("regex"):
            constraints.append(f"regex(., {_regex(rules['regex'])})")
            code = "format"
        if "gb11643" in checks:
            constraints.append(gb11643_constraint())
            code = "checksum"
        if "mobile" in checks:
            constraints.append(f"regex({AS_TYPED}, '{MOBILE}')")
            code = "mobile"
        if "phone" in checks:
            constraints.append(f"regex({AS_TYPED}, '{PHONE}')")
            code = "phone"
        if "house_code_in_grid" in checks and grid is not None:
            constraints.append(f"substr(., 0, 15) = '{grid.code}'")
            code = "house_code_grid" if not rules.get("regex") else "format"
    if "not_future" in checks and row["type"] in ("date", "dateTime"):
        constraints.append(". <= today()" if row["type"] == "date" else ". <= now()")
        code = "future" if code == "invalid" else code
    if constraints:
        row["constraint"] = " and ".join(constraints)
        row.update(_msg(spec, code))
    return row, lists


def build(standards, record_type: str, grid, lookup: bool = True) -> dict:
    """The XLSForm of ``record_type`` for ``grid`` (a ``Grid``): sheets as lists of rows.

    With ``lookup``, a record the worker names by its natural key that is already in
    the grid's master table (the form's ``records.csv``, see ``views``) is sent with
    its current version as ``base_version``, so a change made meanwhile is a conflict
    for the supervisor, never silently overwritten."""
    standard = standards.effective(record_type, grid.code)
    survey = [{"type": "start", "name": START}, {"type": "end", "name": END}]
    lists = {}
    for spec in standard.fields.values():
        row, needed = _question(spec, standard, standards, grid)
        survey.append(row)
        lists.update(needed)
    if lookup and standard.natural_key:
        survey.append({"type": "calculate", "name": BASE_VERSION, "calculation":
                       f"pulldata('records', 'version', 'key', ${{{standard.natural_key}}})"})
    survey.append({"type": "image", "name": PHOTO, "parameters": "max-pixels=1600",
                   **_labels("label", "现场照片（可选）", "Photo (optional)")})
    choices = []
    for name, table in sorted(lists.items()):
        if table is None:
            choices += [{"list_name": name, "name": "true", **_labels("label", "是", "Yes")},
                        {"list_name": name, "name": "false", **_labels("label", "否", "No")}]
            continue
        choices += [{"list_name": name, "name": code, **_labels("label", entry.label,
                                                                 entry.label)}
                    for code, entry in table.codes.items() if entry.until is None]
    settings = [{"form_title": f"{standard.label_zh} · {grid.name}",
                 "form_id": form_id(record_type, grid.code),
                 "version": form_version(standard), "default_language": ZH,
                 "instance_name": f"concat('{record_type}', ' ', ${{{END}}})"}]
    return {"survey": survey, "choices": choices, "settings": settings}


def form_id(record_type: str, grid_code: str) -> str:
    return f"{record_type}-{grid_code}"


FORM_ID = re.compile(r"(person|house|organization|event)-([0-9]{15})\Z")


def parse_form_id(text: str) -> tuple | None:
    match = FORM_ID.match(text or "")
    return (match[1], match[2]) if match else None


def form_version(standard) -> str:
    """The effective standard's version (SPEC.md section 11): phones update when it
    changes; the form's hash changes with anything else (a grid renamed or redrawn)."""
    return standard.version


def to_xlsx(workbook: dict) -> bytes:
    """The XLSForm as an .xlsx file, for people to read and adapt."""
    import openpyxl
    book = openpyxl.Workbook()
    book.remove(book.active)
    for sheet_name in ("survey", "choices", "settings"):
        rows = workbook[sheet_name]
        sheet = book.create_sheet(sheet_name)
        columns = list(dict.fromkeys(key for row in rows for key in row))
        sheet.append(columns)
        for row in rows:
            sheet.append([row.get(column) for column in columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
