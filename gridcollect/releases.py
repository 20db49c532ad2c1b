"""Releases: frozen, self-describing snapshots of the master tables, and their exports.

A release is one SQLite file written once and made read-only: a table per record
type (current master records, one column per field, nested fields as
``location.lat`` columns, lists as JSON), the data dictionary (``_columns``,
``_codes``) and the release's own description (``_release``). Later merges never
touch it. Exports read it back as CSV (UTF-8 with BOM, formula-safe), JSON or
XLSX, streamed, masked for the caller from the sensitivities frozen in it.
Pure domain: no Flask, no SQL.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import pathlib
import secrets
import tempfile

from . import access, clock, store
from .standards import RECORD_TYPES
from .tabular import LABEL_SUFFIX, META_COLUMNS

FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
XLSX_MAX_ROWS = 1_048_576  # a sheet's limit in Excel, header included
WINDOW_ROWS = 20_000  # rows rendered at a time (a few MB)


class NotFound(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a release table: where its value is in a record, and what it means."""

    name: str
    field: str
    path: str  # JSON path into the record's data
    type: str  # string, integer, number, boolean, list, date …
    label_zh: str
    label_en: str
    sensitivity: str
    code_table: str | None
    mask: str  # how it is masked when personal (access.mask_kind)
    free_text: bool  # anything may be in it (else a standard fixes its form)
    description: str = ""
    standard: str = ""


# checks that fix a value's form (told to data teams in the dictionary; the exports
# quote and neutralise every cell all the same)
_FORMED_BY = {"gb11643", "gb32100", "mobile", "phone", "date", "timestamp",
              "house_code_in_grid"}


def _free_text(spec) -> bool:
    rules = spec.rules
    return spec.type == "string" and not (
        spec.code_table or "regex" in rules or "allowed" in rules
        or _FORMED_BY & set(spec.checks))


def columns(standards, record_type: str) -> list:
    """The release columns of a record type: every field any grid has, nested fields
    flattened (``location.lat``), in the standard's order."""
    out = []
    for name, spec in standards.all_fields(record_type).items():
        common = {"field": name, "sensitivity": spec.sensitivity, "mask": access.mask_kind(spec),
                  "description": spec.description, "standard": spec.standard,
                  "free_text": _free_text(spec)}
        if spec.type == "dict" and spec.rules.get("schema"):
            for sub, rules in spec.rules["schema"].items():
                out.append(Column(f"{name}.{sub}", path=f"$.{json.dumps(name)}.{json.dumps(sub)}",
                                  type=rules.get("type", "string"),
                                  label_zh=f"{spec.label_zh}.{sub}",
                                  label_en=f"{spec.label_en}.{sub}", code_table=None, **common))
        else:
            out.append(Column(name, path=f"$.{json.dumps(name)}", type=spec.type,
                              label_zh=spec.label_zh, label_en=spec.label_en,
                              code_table=spec.code_table, **common))
    return out


def dictionary(standards) -> tuple:
    """(column rows, code rows) of the data dictionary."""
    column_rows, tables = [], set()
    for record_type in RECORD_TYPES:
        key_field = standards.effective(record_type).natural_key
        key_spec = standards.all_fields(record_type)[key_field] if key_field else None
        position = 0
        for name, kind, zh, en in META_COLUMNS:
            position += 1
            # the key is the natural key's value: it is as sensitive as that field
            masked_like = key_spec if name == "key" and key_spec else None
            column_rows.append({
                "record_type": record_type, "position": position, "column": name,
                "field": key_field if masked_like else None, "type": kind, "label_zh": zh,
                "label_en": en, "description": "", "standard": "", "code_table": None,
                "sensitivity": masked_like.sensitivity if masked_like else "internal",
                "mask": access.mask_kind(masked_like) if masked_like else "other",
                "free_text": False})
        for column in columns(standards, record_type):
            position += 1
            described = dataclasses.asdict(column)
            del described["path"]
            column_rows.append({"record_type": record_type, "position": position,
                                "column": described.pop("name"), **described})
            if column.code_table:
                tables.add(column.code_table)
    code_rows = []
    for name in sorted(tables):
        table = standards.code_tables[name]
        for code, entry in table.codes.items():
            code_rows.append({"code_table": name, "standard": table.standard, "code": code,
                              "label": entry.label})
    return column_rows, code_rows


def release_dir(db_path) -> pathlib.Path:
    return pathlib.Path(str(db_path) + "-releases")


def create(db, db_path, standards, user: access.User, note: str, directory=None) -> dict:
    """Snapshot every master table into a new read-only release file.

    The builder holds a lock on the file while it writes it, so a build whose process
    died (``fail_abandoned``) is told apart from one still running."""
    directory = pathlib.Path(directory or release_dir(db_path))
    directory.mkdir(parents=True, exist_ok=True)
    created_at = clock.iso(clock.now())
    file_name = f"release-{created_at[:10]}-{secrets.token_hex(6)}.sqlite"
    path = (directory / file_name).resolve()  # found by the server and the CLI alike
    lock = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with store.write(db):
            release_id = store.insert_release(db, created_at, user.username, note, str(path))
        tables = {t: columns(standards, t) for t in RECORD_TYPES}
        column_rows, code_rows = dictionary(standards)
        versions = {t: standards.effective(t).version for t in RECORD_TYPES}
        meta = {"id": release_id, "created_at": created_at, "created_by": user.username,
                "note": note, "standard_versions": versions}
        try:
            counts = store.write_release_file(db_path, path, tables, column_rows, code_rows,
                                              meta)
            os.chmod(path, 0o444)  # written once: a release never changes
            with open(path, "rb") as handle:
                size = path.stat().st_size
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except BaseException:
            path.unlink(missing_ok=True)
            with store.write(db):
                store.fail_release(db, release_id)
            raise
        at = clock.iso(clock.now())
        with store.write(db):
            store.finish_release(db, release_id, counts, versions, size, digest)
            store.audit(db, [(at, user.username, "release", "release", release_id,
                              {"note": note, "counts": counts})])
    finally:
        os.close(lock)  # releases the flock
    return store.get_release(db, release_id)


def fail_abandoned(db, directory) -> list:
    """Clean up after release builders that died (killed mid-build: nobody holds their
    file's lock): a release left ``building`` is failed and its partial file deleted;
    a file in ``directory`` that no release names (its builder died before its row was
    written) is deleted. Returns the ids of the releases failed."""
    failed = []
    for release in store.building_releases(db):
        path = file_path(release)
        with _unheld(path) as free:
            if not free:
                continue  # still being built
            with store.write(db):
                if store.get_release(db, release["id"])["state"] != "building":
                    continue
                path.unlink(missing_ok=True)
                store.fail_release(db, release["id"])
            failed.append(release["id"])
    directory = pathlib.Path(directory)
    named = store.release_files(db)
    for path in directory.glob("release-*.sqlite") if directory.is_dir() else ():
        if str(path.resolve()) in named:
            continue
        with _unheld(path) as free:
            # a builder writes its row holding the lock: once we hold it, no row means none
            if free and str(path.resolve()) not in store.release_files(db):
                path.unlink(missing_ok=True)
    return failed


@contextlib.contextmanager
def _unheld(path):
    """Whether no builder holds ``path`` (a missing file is held by nobody); the lock
    is kept while the caller decides."""
    try:
        handle = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield True
        return
    except PermissionError:  # another user's build: not ours to judge
        yield False
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(handle)


def get(db, release_id: int) -> dict:
    release = store.get_release(db, release_id)
    if release is None or release["state"] != "ready":
        raise NotFound(release_id)
    return release


def list_ready(db, limit: int, before_id=None) -> list:
    return store.list_releases(db, before_id, limit)


def file_path(release: dict) -> pathlib.Path:
    return pathlib.Path(release["file"])


def _columns_read_now(path, record_type=None) -> tuple:
    """The dictionary frozen in a release file, with the sensitivities as they are read
    now: a column masked like a phone may hold a mobile number, and is personal at least
    (a release made before the standards said so still gives no mobile away)."""
    column_rows, code_rows = store.release_dictionary(path, record_type)
    for row in column_rows:
        if row["mask"] == "phone" and row["sensitivity"] in ("public", "internal"):
            row["sensitivity"] = "personal"
    return column_rows, code_rows


def read_dictionary(path) -> dict:
    """The data dictionary of a release file."""
    column_rows, code_rows = _columns_read_now(path)
    tables = {}
    for row in column_rows:
        row["free_text"] = bool(row["free_text"])  # SQLite keeps it as 0 or 1
        tables.setdefault(row.pop("record_type"), []).append(row)
    codes = {}
    for row in code_rows:
        table = codes.setdefault(row["code_table"], {"standard": row["standard"], "codes": {}})
        table["codes"][row["code"]] = row["label"]
    return {"tables": tables, "code_tables": codes}


def _plan(path, record_type, user: access.User, labels: bool, headers="en") -> tuple:
    """What each exported column is: ``(header, column, type, mask or None, code table
    or None)``, without the columns the user may not see; and whether any is masked or
    left out. Headers: the column names (``en``), or the dictionary's Chinese labels
    (``zh``; a label that two columns share gets its column name after it)."""
    column_rows, _ = _columns_read_now(path, record_type)
    plan, masked = [], False
    for row in column_rows:
        view = access.field_view(user, row["sensitivity"])
        masked = masked or view != access.CLEAR
        if view == access.OMIT:
            continue
        mask = row["mask"] if view == access.MASK else None
        header = row["column"] if headers == "en" else (row["label_zh"] or row["column"])
        plan.append((header, row["column"], row["type"], mask, None))
        if labels and row["code_table"] and mask is None:
            plan.append((header + LABEL_SUFFIX[headers], row["column"], row["type"], None,
                         row["code_table"]))
    counts = collections.Counter(header for header, *_ in plan)
    shared = {header for header, count in counts.items() if count > 1}
    plan = [(f"{h}（{c}）" if h in shared else h, c, *rest) for h, c, *rest in plan]
    return plan, masked


def export(db, release: dict, record_type: str, fmt: str, user: access.User, labels=False,
           headers="en"):
    """The bytes of one exported table, in chunks: constant memory however large.
    The release file is read (and any problem with it raised), and the export audited
    (who, which table in which format, masked or not, how many rows), before the
    first chunk."""
    path = file_path(release)
    if fmt == "json":
        headers = "en"  # JSON keys are the column names: headers are a spreadsheet's
    plan, masked = _plan(path, record_type, user, labels, headers)
    prefixes = access.prefixes(user)
    rows = store.release_row_count(path, record_type, prefixes)
    at = clock.iso(clock.now())
    with store.write(db):
        store.audit(db, [(at, user.username, "export", "release", release["id"], {
            "table": record_type, "format": fmt, "labels": labels, "headers": headers,
            "masked": masked, "rows": rows})])
    return _export(path, record_type, fmt, plan, prefixes)


def _export(path, record_type, fmt, plan, prefixes):
    if fmt == "csv":
        yield "\ufeff".encode()  # so Excel reads the UTF-8 as UTF-8
        yield (",".join(store.csv_quote(name) for name, *_ in plan) + "\r\n").encode()
        for lines in store.release_rows(path, record_type, plan, prefixes, "csv", WINDOW_ROWS):
            yield lines + b"\r\n"
    elif fmt == "json":
        yield b"["
        separator = b"\n"
        for objects in store.release_rows(path, record_type, plan, prefixes, "json",
                                          WINDOW_ROWS):
            yield separator + objects
            separator = b",\n"
        yield b"\n]\n"
    else:
        yield from _xlsx(path, record_type, plan, prefixes)


def _xlsx(path, record_type, plan, prefixes):
    """openpyxl's write-only workbook keeps rows on disk; the finished file is sent in
    blocks. Past Excel's row limit the table continues on another sheet."""
    from openpyxl import Workbook
    header = [name for name, *_ in plan]
    workbook = Workbook(write_only=True)
    sheet, rows_in_sheet, sheets = None, XLSX_MAX_ROWS, 0
    for chunk in store.release_rows(path, record_type, plan, prefixes, "cells", WINDOW_ROWS):
        for row in chunk:
            if rows_in_sheet >= XLSX_MAX_ROWS:
                sheets += 1
                sheet = workbook.create_sheet(record_type if sheets == 1
                                              else f"{record_type} ({sheets})")
                sheet.append(header)
                rows_in_sheet = 1
            sheet.append(row)
            rows_in_sheet += 1
    if sheet is None:
        workbook.create_sheet(record_type).append(header)
    with tempfile.TemporaryFile() as handle:
        workbook.save(handle)
        handle.seek(0)
        for block in iter(lambda: handle.read(1 << 16), b""):
            yield block
