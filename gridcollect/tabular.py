"""Reading legacy files: CSV, XLSX, JSON, JSON Lines -> records, cells -> field types.

``read_rows(path)`` yields ``(row, raw)`` with ``row`` the row number a
spreadsheet shows (the header is row 1, the first data row 2; for JSON the
record's place in the array, for JSON Lines its line) and ``raw`` a dict of
column -> cell, or a ``RowError`` for a row that cannot be read at all;
spreadsheets first yield ``(0, Header)``. The columns a release export adds
(``EXPORT_COLUMNS``, code labels) are not fields: ``without_export_columns``.
``Converter(standard).convert(raw)`` turns spreadsheet cells into the field's
declared type, returning the document and the ``(field, code)`` errors of the
cells it could not convert.
"""
from __future__ import annotations

import csv
import datetime
import json
import math
import pathlib
import re
import unicodedata

from .ids import id_check_character

FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx", ".json": "json",
           ".jsonl": "jsonl", ".ndjson": "jsonl"}
csv.field_size_limit(10 * 1024 * 1024)


# the columns of a released (exported) table that are not fields of its standard:
# (column, type, label_zh, label_en); a code column's meaning may follow it, headed
# "<column>.label" (or "<中文名>（含义）" with Chinese headers)
META_COLUMNS = (
    ("key", "string", "主键", "Natural key (an event: its submission id)"),
    ("grid_code", "string", "网格编码", "Grid code"),
    ("version", "integer", "版本", "Version"),
    ("created_at", "string", "首次确认时间", "First confirmed at"),
    ("updated_at", "string", "最后更新时间", "Last updated at"),
)
EXPORT_COLUMNS = {column: zh for column, _, zh, _ in META_COLUMNS}
LABEL_SUFFIX = {"en": ".label", "zh": "（含义）"}
SPREADSHEETS = ("csv", "xlsx")


def export_column(column: str, fields) -> bool:
    """Whether a column (header or JSON key) is one an export adds, not a field."""
    column = _header_text(column)
    if column in fields:
        return False
    if column in EXPORT_COLUMNS or column in EXPORT_COLUMNS.values():
        return True
    return any(column.endswith(suffix) and column[:-len(suffix)] for suffix in _SUFFIXES)


class FileError(Exception):
    """The file as a whole cannot be read (exit code 2)."""


class Header(list):
    """The header of a spreadsheet, yielded as row 0 before its data rows."""


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
        raise FileError(f"{path}: not UTF-8 text.{_encoding_hint(path, kind)}") from None
    except OSError as exc:
        raise FileError(f"{path}: {exc.strerror or exc}") from None


def _encoding_hint(path, kind) -> str:
    with open(path, "rb") as handle:
        start = handle.read(4)
    if start[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return " It is UTF-16 (Excel's 'Unicode Text'): save as 'CSV UTF-8' instead"
    if kind == "csv":
        return " Excel on Chinese Windows saves CSV as GBK: choose 'CSV UTF-8' when saving"
    return ""


def _header(names, path):
    header = [_header_text(n) for n in names]
    seen = set()
    for name in header:
        if name and name in seen:
            raise FileError(f"{path}: column {name!r} appears twice in the header")
        seen.add(name)
    return header


def _blank(cell) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _record(header, cells) -> dict:
    """A row's non-empty cells by column. Cells under no header keep their place
    as ``(column N)``: an unquoted comma must not lose data silently."""
    return {(header[i] if i < len(header) and header[i] else f"(column {i + 1})"): cell
            for i, cell in enumerate(cells) if not _blank(cell)}


def _read_csv(path):
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, strict=True)  # an unclosed quote must not eat rows
        try:
            header = _header(next(reader), path)
        except StopIteration:
            raise FileError(f"{path}: empty file, no header row") from None
        except csv.Error as exc:
            raise FileError(f"{path}: not a readable CSV file: {exc}") from None
        yield 0, Header(header)
        row = 1  # the header's row
        try:
            for cells in reader:
                row += 1
                raw = _record(header, cells)
                if raw:
                    yield row, raw
        except csv.Error as exc:
            raise FileError(f"{path}: CSV error after row {row}: {exc}") from None


def _read_xlsx(path):
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise FileError(f"{path}: not a readable XLSX workbook: {exc}") from None
    try:
        sheets = [sheet for sheet in book.worksheets if hasattr(sheet, "iter_rows")]
        if not sheets:
            raise FileError(f"{path}: the workbook has no worksheet")
        sheet = sheets[0]
        sheet.reset_dimensions()  # some writers record a wrong size; read every cell
        rows = sheet.iter_rows(values_only=True)
        try:
            header = _header(next(rows), path)
        except StopIteration:
            raise FileError(f"{path}: empty worksheet, no header row") from None
        yield 0, Header(header)
        for row, cells in enumerate(rows, start=2):  # as Excel numbers them
            raw = _record(header, cells)
            if raw:
                yield row, raw
    except FileError:
        raise
    except Exception as exc:
        raise FileError(f"{path}: not a readable XLSX workbook: {exc}") from None
    finally:
        book.close()


def _read_json(path):
    with open(path, encoding="utf-8-sig") as handle:
        try:
            data = json.load(handle)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, huge ints, deep nesting
            raise FileError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise FileError(f"{path}: a JSON file must hold an array of records")
    for row, record in enumerate(data, start=1):
        yield row, record if isinstance(record, dict) else RowError("type")


def _read_jsonl(path):
    with open(path, encoding="utf-8-sig") as handle:
        for row, line in enumerate(handle, start=1):
            line = line.lstrip("\ufeff")  # files joined with cat keep their BOMs
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):  # JSONDecodeError, huge ints, deep nesting
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
                self.columns[_header_text(alias)] = name
        self.padding = {}  # field -> width of its code table's codes, where all agree
        for name, spec in standard.fields.items():
            codes = spec.rules.get("allowed") or ()
            widths = {len(c) for c in codes if isinstance(c, str)}
            if len(widths) == 1 and all(isinstance(c, str) and c.isdigit() for c in codes):
                self.padding[name] = widths.pop()
        self.dates = {name for name, spec in standard.fields.items() if "date" in spec.checks}
        self.identifiers = {name for name, spec in standard.fields.items()
                            if spec.rules.get("coerce") == "identifier"}
        # text fields whose cells need a closer look: Excel-damaged identifiers, codes, dates
        self.careful = set(self.padding) | self.dates | self.identifiers
        self._plans = {}
        self._targets = {}  # (source, field) -> {sub-field or None: column}
        self._exported = {}  # JSON key -> whether an export added it (keys repeat)

    def without_export_columns(self, raw: dict) -> dict:
        """A JSON record without the keys an export adds; a record of an export (it has
        every one of them) also without its nulls: a field the record does not have."""
        exported = self._exported
        for key in raw:
            if key not in exported:
                exported[key] = export_column(key, self.columns)
        if not any(exported[key] for key in raw):
            return raw  # a record as a phone sends it: nothing to take out
        drop_nulls = all(column in raw for column in EXPORT_COLUMNS)
        return {k: v for k, v in raw.items()
                if not exported[k] and not (drop_nulls and v is None)}

    def check_header(self, header, source=None):
        """Refuse two columns for one field before any row is read."""
        for column in header:
            if column and (source, column) not in self._plans:
                self._plans[source, column] = self._plan(column, source)

    def convert(self, raw: dict, source=None):
        """Convert one row of ``source`` (its file: a column maps to one field per file)."""
        document, problems = {}, []
        plans = self._plans
        for column, cell in raw.items():
            plan = plans.get((source, column))
            if plan is None:
                plan = plans[source, column] = self._plan(column, source)
            name, sub, kind, spec = plan
            if kind is _EXPORTED:
                continue  # a column an export adds (key, version, a code's meaning)
            if kind == "string" and type(cell) is str and name not in self.careful:
                value, code = cell, None  # the common case: text into a text field
            else:
                value, code = self._cell(name, kind, cell, spec)
            if code:
                problems.append((name if sub is None else f"{name}.{sub}", code))
            elif sub is None:
                document[name] = value
            else:
                document.setdefault(name, {})[sub] = value
        return document, problems

    def _plan(self, column, source):
        """``(field, sub-field or None, type, FieldSpec)`` for a column header."""
        column = _header_text(column)
        if export_column(column, self.columns):
            return column, None, _EXPORTED, None
        head, dot, sub = column.partition(".")
        name = self.columns.get(head, head)
        spec = self.standard.fields.get(name)
        if dot and spec is not None and spec.type == "dict":
            rules = (spec.rules.get("schema") or {}).get(sub, {})
            plan = name, sub, rules.get("type"), None
        else:
            name = self.columns.get(column, column)
            spec = self.standard.fields.get(name)
            plan = name, None, spec.type if spec else None, spec
        # one column per field: "id_number" and "公民身份号码", or "location" and
        # "location.lat", in one file would overwrite each other
        filled = self._targets.setdefault((source, plan[0]), {})
        if plan[1] is None:  # the whole field: clashes with any other column for it
            clash = next(iter(filled.values()), None)
        else:  # a sub-field: clashes with the same sub-field or the whole field
            clash = filled.get(plan[1]) or filled.get(None)
        if clash is not None:
            raise FileError(f"{source}: columns {clash!r} and {column!r} are the same field")
        filled[plan[1]] = column
        return plan

    def _cell(self, name, kind, cell, spec):
        if kind is None:  # not a field of the standard (or a whole dict): validation reports it
            return cell, None
        if isinstance(cell, datetime.datetime):
            cell = cell.date().isoformat() if cell.time() == datetime.time() else cell.isoformat()
        elif isinstance(cell, (datetime.date, datetime.time)):
            cell = cell.isoformat()
        elif not isinstance(cell, (str, int, float)):
            cell = str(cell)  # e.g. an Excel duration
        if kind == "string":
            return self._text(name, cell, spec)
        if kind == "list":
            cell = cell if isinstance(cell, str) else str(cell)
            return [item.strip() for item in _LIST_SEPARATOR.split(cell) if item.strip()], None
        text = unicodedata.normalize("NFKC", cell).strip() if isinstance(cell, str) else cell
        if kind == "integer":
            return _integer(text)
        if kind in ("number", "float"):
            return _number(text)
        if kind == "boolean":
            key = str(text).strip().lower()
            return (True, None) if key in _TRUE else (False, None) if key in _FALSE else (
                None, "not_a_boolean")
        return cell, None

    def _text(self, name, cell, spec):
        """A text field's cell: Excel's damage undone where it can be, reported where not."""
        if isinstance(cell, bool):
            return str(cell).lower(), None
        if isinstance(cell, float) and not cell.is_integer():
            return repr(cell), None
        if isinstance(cell, (int, float)):
            if name in self.identifiers and (isinstance(cell, float) and abs(cell) >= 1e15):
                return None, "excel_number"  # a double holds 15 digits: the rest are gone
            cell = str(int(cell))
        text = unicodedata.normalize("NFKC", cell).strip()
        if name in self.identifiers and _damaged_by_excel(text):
            return None, "excel_number"
        if name in self.dates:
            local = _LOCAL_DATE.match(text)
            if local:
                year, month, day = local.groups()
                return f"{year}-{int(month):02d}-{int(day):02d}", None
        width = self.padding.get(name)
        if width and text.isascii() and text.isdigit() and len(text) < width:
            return text.zfill(width), None  # Excel dropped a code's leading zeros
        return cell, None


_EXPORTED = object()  # the plan's kind for a column an export adds
_SUFFIXES = {unicodedata.normalize("NFKC", s) for s in LABEL_SUFFIX.values()}  # as read


def _header_text(name) -> str:
    return unicodedata.normalize("NFKC", str(name or "")).strip()


def _damaged_by_excel(text: str) -> bool:
    """An identifier Excel turned into a number: ``4.20502E+17``, or its 15
    significant digits followed by zeros. A real ID may end in 000 (one in
    1,100): one that still passes its check is accepted, so a valid ID is never
    refused; in a damaged column, ten IDs in eleven fail it and show the damage."""
    return bool(_SCIENTIFIC.match(text)) or (
        len(text) > 15 and text.isascii() and text.isdigit() and not text[15:].strip("0")
        and not (len(text) == 18 and id_check_character(text) == text[17]))


def _integer(text):
    if isinstance(text, bool):
        return None, "not_an_integer"
    if isinstance(text, int):
        return text, None
    if isinstance(text, float):
        return (int(text), None) if text.is_integer() else (None, "not_an_integer")
    if _INTEGER.match(text):
        try:
            return int(text.split(".")[0]), None
        except ValueError:  # more digits than Python converts
            pass
    return None, "not_an_integer"


def _number(text):
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return text, None
    if _NUMBER.match(text):
        try:
            number = int(text) if _INTEGER.match(text) and "." not in text else float(text)
        except ValueError:
            number = None
        if number is not None and math.isfinite(number):
            return number, None
    return None, "not_a_number"
