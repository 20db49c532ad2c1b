"""Bulk import of legacy spreadsheets: rows become submissions, exactly as if a phone
had sent them (same validation, same idempotency), optionally confirmed at once.

Each row's ``client_id`` is derived from what the row says (its record type, grid
and content), so importing the same file again, or a corrected copy of it, stores
only what is new. The whole file is read once before anything is stored: a file
that cannot be read stores nothing. Pure domain: no SQL.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field

from . import access, clock, store, workflow
from .tabular import SPREADSHEETS, Converter, Header, RowError, file_format, read_rows

BATCH = 500


@dataclass
class ImportSummary:
    rows: int = 0
    accepted: int = 0
    duplicate: int = 0
    invalid: int = 0
    forbidden: int = 0
    confirmed: int = 0
    conflict: int = 0
    awaiting_move: int = 0  # would move a record from a grid the confirmer does not oversee
    errors: list = field(default_factory=list)  # (row, [FieldError dict])


def row_id(record_type: str, grid_code: str, data: dict) -> str:
    """The client_id of an imported row: the same row, the same id, in any file."""
    text = json.dumps([record_type, grid_code, data], ensure_ascii=False, sort_keys=True,
                      default=str)
    return "import:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _items(path, standard, record_type, grid_code, collected_at, summary):
    """(row, submission item) per row that converts; conversion errors are counted."""
    kind = file_format(path)
    converter = Converter(standard)
    for row, raw in read_rows(path):
        if isinstance(raw, Header):
            converter.check_header(raw, str(path))
            continue
        summary.rows += 1
        if isinstance(raw, RowError):
            summary.invalid += 1
            summary.errors.append((row, [standard.error("", raw.code).as_dict()]))
            continue
        if kind not in SPREADSHEETS:
            raw = converter.without_export_columns(raw)
        else:
            raw, problems = converter.convert(raw, str(path))
            if problems:
                summary.invalid += 1
                summary.errors.append((row, [standard.error(f, c).as_dict()
                                             for f, c in problems]))
                continue
        yield row, {"client_id": row_id(record_type, grid_code, raw), "record_type": record_type,
                    "grid_code": grid_code, "action": "upsert", "data": raw,
                    "collected_at": collected_at, "base_version": None, "replaces": None}


def import_file(db, standards, grids, path, record_type: str, grid_code: str,
                worker: access.User, confirm_by: access.User | None = None) -> ImportSummary:
    standard = standards.effective(record_type, grid_code)
    now = clock.now()
    for _ in _items(path, standard, record_type, grid_code, now, ImportSummary()):
        pass  # a first reading: a file that cannot be read whole stores nothing
    summary = ImportSummary()
    try:
        items = _items(path, standard, record_type, grid_code, now, summary)
        while batch := list(itertools.islice(items, BATCH)):
            _store(db, standards, grids, worker, confirm_by, batch, summary)
        summary.errors.sort(key=lambda error: error[0])  # in the file's order
    finally:
        at = clock.iso(clock.now())
        with store.write(db):
            store.audit(db, [(at, worker.username, "import", "file", None, {
                "file": str(path), "record_type": record_type, "grid_code": grid_code,
                "confirmed_by": confirm_by.username if confirm_by else None,
                **{k: getattr(summary, k) for k in ("rows", "accepted", "duplicate", "invalid",
                                                     "forbidden", "confirmed", "conflict",
                                                     "awaiting_move")}})])
    return summary


def _store(db, standards, grids, worker, confirm_by, batch, summary):
    results = workflow.submit(db, standards, grids, worker, [i for _, i in batch])
    stored = []
    for (row, _), result in zip(batch, results):
        setattr(summary, result["status"], getattr(summary, result["status"]) + 1)
        if result["status"] == "invalid":
            summary.errors.append((row, result["errors"]))
        elif result["status"] in ("accepted", "duplicate"):
            stored.append(result["id"])
    if confirm_by is not None and stored:  # duplicates too: a run cut short is resumed
        for result in workflow.review_many(db, confirm_by, stored, "confirm", None):
            if result["status"] == "reviewed":
                summary.confirmed += result["state"] == "confirmed"
                summary.conflict += result["state"] == "conflict"
                summary.awaiting_move += result["state"] == "awaiting_move"
