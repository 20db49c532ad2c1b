"""Bulk import of legacy spreadsheets: rows become submissions, exactly as if a phone
had sent them (same validation, same idempotency), optionally confirmed at once.

Each row's ``client_id`` is derived from the file's content and the row number, so
importing the same file again stores nothing twice. Pure domain: no SQL.
"""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field

from . import access, clock, store, workflow
from .tabular import Converter, Header, RowError, file_format, read_rows

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
    errors: list = field(default_factory=list)  # (row, [FieldError dict])


def file_digest(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _items(path, standard, record_type, grid_code, collected_at, summary):
    """(row, submission item) per row that converts; conversion errors are counted."""
    kind = file_format(path)
    converter = Converter(standard)
    prefix = f"import:{file_digest(path)[:20]}:"
    for row, raw in read_rows(path):
        if isinstance(raw, Header):
            converter.check_header(raw, str(path))
            continue
        summary.rows += 1
        if isinstance(raw, RowError):
            summary.invalid += 1
            summary.errors.append((row, [standard.error("", raw.code).as_dict()]))
            continue
        if kind in ("csv", "xlsx"):
            raw, problems = converter.convert(raw, str(path))
            if problems:
                summary.invalid += 1
                summary.errors.append((row, [standard.error(f, c).as_dict()
                                             for f, c in problems]))
                continue
        yield row, {"client_id": f"{prefix}{row}", "record_type": record_type,
                    "grid_code": grid_code, "action": "upsert", "data": raw,
                    "collected_at": collected_at, "base_version": None, "replaces": None}


def import_file(db, standards, grids, path, record_type: str, grid_code: str,
                worker: access.User, confirm_by: access.User | None = None) -> ImportSummary:
    summary = ImportSummary()
    standard = standards.effective(record_type, grid_code)
    items = _items(path, standard, record_type, grid_code, clock.now(), summary)
    while batch := list(itertools.islice(items, BATCH)):
        results = workflow.submit(db, standards, grids, worker, [i for _, i in batch])
        stored = []
        for (row, _), result in zip(batch, results):
            setattr(summary, result["status"], getattr(summary, result["status"]) + 1)
            if result["status"] == "invalid":
                summary.errors.append((row, result["errors"]))
            elif result["status"] in ("accepted", "duplicate"):
                stored.append(result["id"])
        if confirm_by is not None and stored:
            for result in workflow.review_many(db, confirm_by, stored, "confirm", None):
                if result["status"] == "reviewed":
                    summary.confirmed += result["state"] == "confirmed"
                    summary.conflict += result["state"] == "conflict"
    at = clock.iso(clock.now())
    with store.write(db):
        store.audit(db, [(at, worker.username, "import", "file", None, {
            "file": str(path), "record_type": record_type, "grid_code": grid_code,
            "confirmed_by": confirm_by.username if confirm_by else None,
            **{k: getattr(summary, k) for k in ("rows", "accepted", "duplicate", "invalid",
                                                 "forbidden", "confirmed", "conflict")}})])
    return summary
