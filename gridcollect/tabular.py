"""Reading legacy files: CSV, XLSX, JSON, JSON Lines -> records, cells -> field types.

``read_rows(path)`` yields ``(row, raw)`` with ``row`` the 1-based data row
(header excluded) and ``raw`` a dict of column -> cell, or a ``RowError`` for a
row that cannot be read at all. ``Converter(standard).convert(raw)`` turns
spreadsheet cells into the field's declared type, returning the document and
the ``(field, code)`` errors of the cells it could not convert.
"""
from __future__ import annotations

import csv
import datetime
import json
import pathlib
import re
import unicodedata

FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx", ".json": "json",
           ".jsonl": "jsonl", ".ndjson": "jsonl"}
csv.field_size_limit(10 * 1024 * 1024)


def _as_list(value):
    return [] if value is None else [value] if isinstance(value, str) else list(value)


class FileError(Exception):
    """The file as a whole cannot be read (exit code 2)."""


class RowError:
    """A row that is not a record at all (bad JSON line, not an object)."""

    def __init__(self, code):
        self.code = code


def file_format(path) -> str:
    kind = FORMATS.get(pathlib.Path(path).suffix.lower())
    if kind is None:
        raise FileError(f"{path}: unknown file type; use .csv, .xlsx, .json or .jsonl")
    return kind


def read_rows(path):
    kind = file_format(path)
    try:
        yield from _READERS[kind](path)
    except UnicodeDecodeError:
        raise FileError(f"{path}: not UTF-8 text. Excel on Chinese Windows saves CSV as "
                        "GBK: choose 'CSV UTF-8' when saving") from None
    except OSError as exc:
        raise FileError(f"{path}: {exc.strerror or exc}") from None


def _header(names, path):
    header = [unicodedata.normalize("NFKC", str(n or "")).strip() for n in names]
    seen = set()
    for name in header:
        if name and name in seen:
            raise FileError(f"{path}: column {name!r} appears twice in the header")
        seen.add(name)
    return header


def _read_csv(path):
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = _header(next(reader), path)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileError(f"{path}: not a readable CSV file: {exc}") from None
        row = 0
        try:
            for cells in reader:
                row += 1
                raw = {name: cell for name, cell in zip(header, cells) if name and cell.strip()}
                for index in range(len(header), len(cells)):
                    if cells[index].strip():  # e.g. an unquoted comma: never drop data
                        raw[f"(column {index + 1})"] = cells[index]
                if raw or any(c.strip() for c in cells):
                    yield row, raw
        except csv.Error as exc:
            raise FileError(f"{path}: CSV error after data row {row}: {exc}") from None


def _read_xlsx(path):
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException
    import zipfile

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise FileError(f"{path}: not a readable XLSX workbook: {exc}") from None
    try:
        rows = book.worksheets[0].iter_rows(values_only=True)
        try:
            header = _header(next(rows), path)
        except StopIteration:
            return
        for row, cells in enumerate(rows, start=1):
            raw = {name: cell for name, cell in zip(header, cells)
                   if name and cell is not None and not (isinstance(cell, str) and not cell.strip())}
            if raw:
                yield row, raw
    finally:
        book.close()


def _read_json(path):
    with open(path, encoding="utf-8-sig") as handle:
        try:
            data = json.load(handle)
        except json.JSONDecodeError as exc:
            raise FileError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise FileError(f"{path}: a JSON file must hold an array of records")
    for row, record in enumerate(data, start=1):
        yield row, record if isinstance(record, dict) else RowError("type")


def _read_jsonl(path):
    with open(path, encoding="utf-8-sig") as handle:
        for row, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                yield row, RowError("not_json")
                continue
            yield row, record if isinstance(record, dict) else RowError("type")


_READERS = {"csv": _read_csv, "xlsx": _read_xlsx, "json": _read_json, "jsonl": _read_jsonl}

# --- cell conversion ----------------------------------------------------------

_INTEGER = re.compile(r"[+-]?\d+(\.0*)?\Z", re.ASCII)
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z", re.ASCII)
_SCIENTIFIC = re.compile(r"\d(\.\d+)?[eE]\+?\d+\Z", re.ASCII)
_TRUE = {"1", "true", "yes", "y", "是", "有", "√"}
_FALSE = {"0", "false", "no", "n", "否", "无", "×"}
_LIST_SEPARATOR = re.compile(r"[;；]")
# how spreadsheets in Chinese locales write a date: 1987/1/1, 1987.1.1, 1987年1月1日
_LOCAL_DATE = re.compile(r"(\d{4})\s*[/.年-]\s*(\d{1,2})\s*[/.月-]\s*(\d{1,2})\s*日?\Z", re.ASCII)


class Converter:
    """Converts the cells of one spreadsheet row to a standard's field types."""

    def __init__(self, standard):
        self.standard = standard
        self.columns = {}  # column header -> field name (name, Chinese or English label)
        for name, spec in standard.fields.items():
            for alias in (spec.label_en, spec.label_zh, name):
                self.columns[alias] = name
        self.padding = {}  # field -> width of its code table's codes, where all agree
        for name, spec in standard.fields.items():
            codes = spec.rules.get("allowed") or ()
            widths = {len(c) for c in codes if isinstance(c, str)}
            if len(widths) == 1 and all(isinstance(c, str) and c.isdigit() for c in codes):
                self.padding[name] = widths.pop()
        self.dates = {name for name, spec in standard.fields.items()
                      if "date" in _as_list(spec.rules.get("check_with"))}
        # text fields whose cells need a closer look: Excel-damaged identifiers, codes, dates
        self.careful = set(self.padding) | self.dates | {
            name for name, spec in standard.fields.items()
            if spec.rules.get("coerce") == "identifier"}
        self._plans = {}
        self._targets = {}  # (field, sub-field) -> the column that fills it

    def convert(self, raw: dict, source=None):
        """Convert one row of ``source`` (its file: a column maps to one field per file)."""
        document, problems = {}, []
        plans = self._plans
        for column, cell in raw.items():
            plan = plans.get((source, column))
            if plan is None:
                plan = plans[source, column] = self._plan(column)
                other = self._targets.setdefault((source, plan[:2]), column)
                if other != column:
                    raise FileError(f"columns {other!r} and {column!r} are the same field")
            name, sub, kind, spec = plan
            if kind == "string" and type(cell) is str and name not in self.careful:
                value, code = cell, None  # the common case: text into a text field
            else:
                value, code = self._cell(name if sub is None else f"{name}.{sub}", kind, cell,
                                         spec)
            if code:
                problems.append((name if sub is None else f"{name}.{sub}", code))
            elif sub is None:
                document[name] = value
            else:
                document.setdefault(name, {})[sub] = value
        return document, problems

    def _plan(self, column):
        """``(field, sub-field or None, type, FieldSpec)`` for a column header."""
        head, dot, sub = column.partition(".")
        name = self.columns.get(head, head)
        spec = self.standard.fields.get(name)
        if dot and spec is not None and spec.type == "dict":
            rules = (spec.rules.get("schema") or {}).get(sub, {})
            return name, sub, rules.get("type"), None
        name = self.columns.get(column, column)
        spec = self.standard.fields.get(name)
        return name, None, spec.type if spec else None, spec

    def _cell(self, name, kind, cell, spec):
        if kind is None:  # not a field of the standard: validation reports it
            return cell, None
        if isinstance(cell, datetime.datetime):
            cell = cell.date().isoformat() if cell.time() == datetime.time() else cell.isoformat()
        elif isinstance(cell, datetime.date):
            cell = cell.isoformat()
        if kind == "string":
            if isinstance(cell, bool):
                return str(cell).lower(), None
            if isinstance(cell, (int, float)):
                return self._number_as_text(name, cell, spec)
            if (spec is not None and spec.rules.get("coerce") == "identifier"
                    and _SCIENTIFIC.match(cell.strip())):
                return None, "excel_number"
            if name in self.dates:
                local = _LOCAL_DATE.match(unicodedata.normalize("NFKC", cell).strip())
                if local:
                    year, month, day = local.groups()
                    return f"{year}-{int(month):02d}-{int(day):02d}", None
            width = self.padding.get(name)
            if width and cell.strip().isascii() and cell.strip().isdigit() \
                    and len(cell.strip()) < width:
                return cell.strip().zfill(width), None  # Excel dropped a code's leading zeros
            return cell, None
        if kind == "list":
            if not isinstance(cell, str):
                cell = str(cell)
            return [item.strip() for item in _LIST_SEPARATOR.split(cell) if item.strip()], None
        text = unicodedata.normalize("NFKC", cell).strip() if isinstance(cell, str) else cell
        if kind == "integer":
            if isinstance(text, bool):
                return None, "not_an_integer"
            if isinstance(text, float):
                return (int(text), None) if text.is_integer() else (None, "not_an_integer")
            if isinstance(text, int) or (isinstance(text, str) and _INTEGER.match(text)):
                return int(float(text)) if isinstance(text, str) and "." in text else int(text), None
            return None, "not_an_integer"
        if kind in ("number", "float"):
            if isinstance(text, (int, float)) and not isinstance(text, bool):
                return text, None
            if isinstance(text, str) and _NUMBER.match(text):
                return (int(text) if _INTEGER.match(text) and "." not in text
                        else float(text)), None
            return None, "not_a_number"
        if kind == "boolean":
            if isinstance(text, bool):
                return text, None
            key = str(text).strip().lower()
            if key in _TRUE:
                return True, None
            if key in _FALSE:
                return False, None
            return None, "not_a_boolean"
        return cell, None

    def _number_as_text(self, name, number, spec):
        """A text field Excel stored as a number."""
        if isinstance(number, float) and not number.is_integer():
            return repr(number), None
        digits = str(int(number))
        # Excel keeps 15 significant digits: a longer number it stored is already
        # damaged (a float, or zeros past the 15th digit).
        if (spec is not None and spec.rules.get("coerce") == "identifier" and len(digits) > 15
                and (isinstance(number, float) or not digits[15:].strip("0"))):
            return None, "excel_number"
        width = self.padding.get(name)
        if width and len(digits) < width:
            digits = digits.zfill(width)  # Excel dropped the leading zeros of a code
        return digits, None
