"""Releases: their rows here, and the release files (written, read, exported in SQL)."""
from __future__ import annotations

import json
import os
import pathlib
import sqlite3
import urllib.request

from .base import BUSY_TIMEOUT_S, _ident, _json, _literal, _scope_sql


def insert_release(db, created_at, created_by, note, file_name) -> int:
    return db.execute("INSERT INTO releases (state, created_at, created_by, note, file)"
                      " VALUES ('building', ?, ?, ?, ?)",
                      [created_at, created_by, note, file_name]).lastrowid


def finish_release(db, release_id, counts, versions, size, sha256):
    db.execute("UPDATE releases SET state = 'ready', counts = ?, standard_versions = ?,"
               " size = ?, sha256 = ? WHERE id = ?",
               [_json(counts), _json(versions), size, sha256, release_id])


def fail_release(db, release_id):
    db.execute("UPDATE releases SET state = 'failed' WHERE id = ?", [release_id])


def building_releases(db) -> list:
    return [dict(row) for row in db.query("SELECT id, file FROM releases"
                                          " WHERE state = 'building'")]


def release_files(db) -> set:
    return {row["file"] for row in db.query("SELECT file FROM releases")}


def _release(row) -> dict:
    release = dict(row)
    for key in ("counts", "standard_versions"):
        release[key] = None if release[key] is None else json.loads(release[key])
    return release


def get_release(db, release_id: int) -> dict | None:
    row = next(db.query("SELECT * FROM releases WHERE id = ?", [release_id]), None)
    return None if row is None else _release(row)


def list_releases(db, before_id=None, limit=50) -> list:
    where, params = "state = 'ready'", []
    if before_id is not None:
        where += " AND id < ?"
        params.append(before_id)
    return [_release(row) for row in db.query(
        f"SELECT * FROM releases WHERE {where} ORDER BY id DESC LIMIT ?", params + [limit])]


_SQL_TYPES = {"integer": "INTEGER", "number": "REAL", "float": "REAL", "boolean": "INTEGER"}
_META = ("key", "grid_code", "version", "created_at", "updated_at")


def write_release_file(db_path, path, tables: dict, column_rows, code_rows, meta) -> dict:
    """Write a release file from one consistent snapshot of the master records.

    ``tables`` maps a record type to its columns (``name``, ``path``, ``type``). The
    file is attached to a connection of its own: the snapshot is read while the
    server goes on writing. Returns the rows per table.
    """
    conn = sqlite3.connect(str(db_path), isolation_level=None, timeout=BUSY_TIMEOUT_S)
    try:
        conn.execute("ATTACH DATABASE ? AS rel", [str(path)])
        conn.execute("PRAGMA rel.journal_mode = OFF")  # a failed build is deleted whole
        conn.execute("PRAGMA rel.synchronous = OFF")  # fsynced once at the end
        conn.execute("BEGIN")
        counts = {}
        for record_type, columns in tables.items():
            table = _ident(record_type)
            definitions = [f"{name} {'INTEGER' if name == 'version' else 'TEXT'} NOT NULL"
                           for name in _META]
            definitions += [f"{_ident(c.name)} {_SQL_TYPES.get(c.type, 'TEXT')}"
                            for c in columns]
            conn.execute(f"CREATE TABLE rel.{table} ({', '.join(definitions)})")
            names = list(_META) + [_ident(c.name) for c in columns]
            values = list(_META) + [f"data {'->' if c.type == 'list' else '->>'}"
                                    f" {_literal(c.path)}" for c in columns]
            conn.execute(f"INSERT INTO rel.{table} ({', '.join(names)})"
                         f" SELECT {', '.join(values)} FROM main.records"
                         f" WHERE record_type = ? AND NOT retired ORDER BY key", [record_type])
            conn.execute(f"CREATE INDEX rel.{_ident(record_type + '_grid')}"
                         f" ON {table}(grid_code)")
            counts[record_type] = conn.execute(f"SELECT count(*) FROM rel.{table}").fetchone()[0]
        keys = ("record_type", "position", "column", "field", "type", "label_zh", "label_en",
                "description", "standard", "code_table", "sensitivity", "mask", "free_text")
        conn.execute(f"CREATE TABLE rel._columns ({', '.join(_ident(k) for k in keys)})")
        conn.executemany(f"INSERT INTO rel._columns VALUES ({', '.join('?' * len(keys))})",
                         [[row[k] for k in keys] for row in column_rows])
        conn.execute("CREATE TABLE rel._codes (code_table TEXT, standard TEXT, code TEXT,"
                     " label TEXT, PRIMARY KEY (code_table, code)) WITHOUT ROWID")
        conn.executemany("INSERT INTO rel._codes VALUES (?, ?, ?, ?)",
                         [(r["code_table"], r["standard"], r["code"], r["label"])
                          for r in code_rows])
        conn.execute("CREATE TABLE rel._release (key TEXT PRIMARY KEY, value TEXT)")
        conn.executemany("INSERT INTO rel._release VALUES (?, ?)",
                         [(k, _json(v)) for k, v in {**meta, "counts": counts}.items()])
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE rel")
    finally:
        conn.close()
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())
    return counts


def _open_release(path) -> sqlite3.Connection:
    """A release file, read-only (it never changes once written)."""
    uri = "file:" + urllib.request.pathname2url(str(pathlib.Path(path).resolve()))
    conn = sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    return conn


def release_dictionary(path, record_type=None) -> tuple:
    conn = _open_release(path)
    try:
        where, params = ("WHERE record_type = ?", [record_type]) if record_type else ("", [])
        columns = [dict(r) for r in conn.execute(
            f"SELECT * FROM _columns {where} ORDER BY record_type, position", params)]
        codes = [dict(r) for r in conn.execute("SELECT * FROM _codes ORDER BY code_table, code")]
    finally:
        conn.close()
    return columns, codes


# masks as SQL expressions, the same as access.mask (a differential test holds them equal)
_MASKS = {  # the common lengths first: a constant run of stars is cheaper than printf
    "id_number": "CASE WHEN length({v}) = 18 THEN substr({v}, 1, 6) || '********'"
                 " || substr({v}, -4) WHEN length({v}) > 10 THEN substr({v}, 1, 6)"
                 " || printf('%.*c', length({v}) - 10, '*') || substr({v}, -4)"
                 " ELSE '***' END",
    "phone": "CASE WHEN length({v}) = 11 THEN substr({v}, 1, 3) || '****' || substr({v}, -4)"
             " WHEN length({v}) > 7 THEN substr({v}, 1, 3)"
             " || printf('%.*c', length({v}) - 7, '*') || substr({v}, -4)"
             " ELSE '***' END",
    "name": "CASE WHEN length({v}) > 0 THEN substr({v}, 1, 1) || '*' ELSE '***' END",
    "other": "'***'",
}
# A spreadsheet runs a cell that starts like a formula (= + - @ tab CR): such text
# gets a leading '. One CASE, the common path first, each step naming the value once:
# SQLite evaluates an expression as often as it is named.
_FORMULA = "unicode({v}) IN (61, 43, 45, 64, 9, 13)"
_SPECIAL = "{v} GLOB '*[,\"' || char(10, 13) || ']*'"
_QUOTED = "replace({v}, '\"', '\"\"') || '\"'"
_NEUTRALISE = f"CASE WHEN typeof({{v}}) = 'text' AND {_FORMULA} THEN '''' || {{v}} ELSE {{v}} END"
_CSV_CELL = (f"CASE typeof({{v}}) WHEN 'text' THEN CASE"
             f" WHEN {_FORMULA} THEN CASE WHEN {_SPECIAL} THEN '\"''' || {_QUOTED}"
             f" ELSE '''' || {{v}} END"
             f" WHEN {_SPECIAL} THEN '\"' || {_QUOTED} ELSE {{v}} END"
             f" WHEN 'null' THEN '' ELSE {{v}} END")


def mask_sql(kind: str, value: str) -> str:
    return f"(CASE WHEN {value} IS NULL THEN NULL ELSE {_MASKS[kind].format(v=value)} END)"


_LIST_FAST = ("CASE WHEN {v} IS NULL THEN NULL WHEN {v} GLOB '[[]\"*\"]' AND instr({v}, '\\') = 0"
              " THEN replace(substr({v}, 3, length({v}) - 4), '\",\"', ';')"
              " WHEN {v} = '[]' THEN '' ELSE (SELECT group_concat(value, ';')"
              " FROM json_each({v})) END")


def _cell_sql(column, kind, mask, code_table, fmt) -> str:
    """One exported cell as SQL. Every text cell is quoted and neutralised, whatever
    its standard says of its form: a value is only as well formed as the check that
    let it in, and the writer does not depend on any check."""
    value = _ident(column)
    if code_table and kind == "list":
        value = (f"(SELECT group_concat(coalesce(c.label, j.value), ';') FROM json_each({value})"
                 f" j LEFT JOIN _codes c ON c.code_table = {_literal(code_table)}"
                 f" AND c.code = j.value)")
    elif code_table:
        value = (f"(SELECT label FROM _codes WHERE code_table = {_literal(code_table)}"
                 f" AND code = {value})")
    elif kind == "list":
        value = f"json({value})" if fmt == "json" else "(" + _LIST_FAST.format(v=value) + ")"
    if mask:
        value = mask_sql(mask, value)
    if fmt == "json":  # json_object escapes; JSON has no formulas
        return value
    if value == _ident(column):
        return _safe_cell(value, fmt)
    # computed once, then checked: the checks name their value several times
    return f"(SELECT {_safe_cell('x', fmt)} FROM (SELECT {value} AS x))"


def _safe_cell(value: str, fmt: str) -> str:
    return "(" + (_CSV_CELL if fmt == "csv" else _NEUTRALISE).format(v=value) + ")"


def csv_quote(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def release_row_count(path, record_type, prefixes) -> int:
    """Rows of a release table in grids under the prefixes."""
    where, params = _scope_sql("grid_code", prefixes)
    reader = _open_release(path)
    try:
        return reader.execute(f"SELECT count(*) FROM {_ident(record_type)} WHERE {where}",
                              params).fetchone()[0]
    finally:
        reader.close()


def release_rows(path, record_type, plan, prefixes, fmt, window_rows):
    """A release table, a window of ``window_rows`` row ids at a time: the window's
    CSV lines or JSON objects as one UTF-8 ``bytes`` (SQLite renders and joins them:
    no Python object per row), or a list of cell tuples (``fmt="cells"``). Each cell
    is masked, labelled and neutralised in SQL as ``plan`` says (``(name, column,
    type, mask, code_table)`` per exported column)."""
    where, params = _scope_sql("grid_code", prefixes)
    table = _ident(record_type)
    window = f"FROM {table} WHERE {where} AND rowid > ? AND rowid <= ? ORDER BY rowid"
    reader = _open_release(path)
    reader.row_factory = None
    if fmt != "cells":
        reader.text_factory = bytes  # UTF-8 as SQLite holds it: nothing to decode or encode
    if fmt == "csv":
        windows = _csv_windows(reader, plan, window, params)
    else:
        windows = _windows(reader, plan, window, params, fmt)
    try:
        last = reader.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()[0]
        for start in range(0, last, window_rows):
            rows = windows(start, start + window_rows)
            if rows:
                yield rows
    finally:
        reader.close()


def _windows(reader, plan, window, params, fmt):
    cells = [_cell_sql(column, kind, mask, code_table, fmt)
             for _, column, kind, mask, code_table in plan]
    if fmt == "json":  # a window's objects joined by SQLite: one step, one string
        select = "json_object(" + ", ".join(
            f"{_literal(name)}, {cell}" for (name, *_), cell in zip(plan, cells)) + ")"
        sql = f"SELECT group_concat(line, ',' || char(10)) FROM (SELECT {select} AS line {window})"
        return lambda first, last: reader.execute(sql, [*params, first, last]).fetchone()[0]
    sql = f"SELECT {', '.join(cells)} {window}"
    return lambda first, last: reader.execute(sql, [*params, first, last]).fetchall()


_UNIT, _RECORD = b"\x1f", b"\x1e"  # separators no cell may hold (counted to be sure)


def _needs_quotes(data: bytes) -> bool:
    return b"," in data or b'"' in data or b"\n" in data or b"\r" in data  # memchr each


def _csv_windows(reader, plan, window, params):
    """CSV lines of a window. SQLite joins the neutralised cells with unit and record
    separators; when every separator is where it should be (no cell holds one), each
    cell that needs quotes (a comma, a quote, a line break: rare) is quoted here, and
    the separators become commas and CRLFs. Else the window is rendered cell by cell
    in SQL, each cell quoted as it needs (the same bytes, slower)."""
    neutral = [_cell_sql(column, kind, mask, code_table, "cells")
               for _, column, kind, mask, code_table in plan]
    fast = (f"SELECT count(*), group_concat(line, char(30)) FROM (SELECT"
            f" {_printf(neutral, chr(31))} AS line {window})")
    cells = [_cell_sql(column, kind, mask, code_table, "csv")
             for _, column, kind, mask, code_table in plan]
    slow = (f"SELECT group_concat(line, char(13, 10)) FROM (SELECT {_printf(cells, ',')}"
            f" AS line {window})")
    width = len(plan)

    def lines(first, last):
        rows, blob = reader.execute(fast, [*params, first, last]).fetchone()
        if not rows:
            return None
        if blob.count(_UNIT) != rows * (width - 1) or blob.count(_RECORD) != rows - 1:
            return reader.execute(slow, [*params, first, last]).fetchone()[0]
        if _needs_quotes(blob):
            blob = _RECORD.join(_quote_line(line) if _needs_quotes(line) else line
                                for line in blob.split(_RECORD))
        return blob.replace(_UNIT, b",").replace(_RECORD, b"\r\n")
    return lines


def _quote_line(line: bytes) -> bytes:
    return _UNIT.join(b'"' + cell.replace(b'"', b'""') + b'"' if _needs_quotes(cell)
                      else cell for cell in line.split(_UNIT))


def _printf(cells, separator) -> str:
    """One printf a line: SQLite builds it in one piece (NULL prints as ""); at most 100
    arguments each."""
    return f" || char({ord(separator)}) || ".join(
        f"printf('{separator.join(['%s'] * len(part))}', {', '.join(part)})"
        for part in (cells[i:i + 100] for i in range(0, len(cells), 100)))
