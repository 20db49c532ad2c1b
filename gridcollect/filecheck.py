"""Validating whole files, the engine of ``gridcollect validate``.

Rows are read in the main process and validated in chunks by a pool of worker
processes (one per core), in order. ``check_files`` yields one ``RowResult``
per data row.
"""
from __future__ import annotations

import itertools
import multiprocessing
import os
from dataclasses import dataclass

from .checks import Context
from .tabular import SPREADSHEETS, Converter, FileError, Header, RowError, file_format, read_rows

CHUNK = 2000
PARALLEL_ABOVE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class RowResult:
    file: str
    row: int
    errors: tuple  # FieldError, ...

    @property
    def valid(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        return {"file": self.file, "row": self.row, "valid": self.valid,
                "errors": [e.as_dict() for e in self.errors]}


class RowChecker:
    """Converts (for spreadsheets) and validates rows against one standard."""

    def __init__(self, standard, context: Context):
        self.standard = standard
        self.context = context
        self.converter = Converter(standard)

    def check(self, kind, raw, source=None):
        """The errors of one row, as a tuple of ``FieldError``."""
        if isinstance(raw, RowError):
            return (self.standard.error("", raw.code),)
        problems = []
        if kind in SPREADSHEETS:
            raw, problems = self.converter.convert(raw, source)
        else:
            raw = self.converter.without_export_columns(raw)
        _, pairs = self.standard.check(raw, self.context)
        if problems:  # a cell that could not be converted explains its field
            failed = {field for field, _ in problems}
            pairs = problems + [(f, c) for f, c in pairs if not _explained(f, failed)]
        return tuple(self.standard.error(f, c) for f, c in pairs)

    def check_chunk(self, chunk):
        source, kind, rows = chunk
        checked = []
        for row, raw in rows:
            if isinstance(raw, Header):
                self.converter.check_header(raw, source)
            else:
                checked.append((row, self.check(kind, raw, source)))
        return checked


def _explained(field, failed) -> bool:
    """Whether an error on ``field`` follows from cells that failed conversion."""
    return field in failed or any(f.startswith(field + ".") for f in failed)


_worker_checker = None  # the RowChecker of a worker process


def _start_worker(checker):
    global _worker_checker
    _worker_checker = checker


def _worker_check(chunk):
    return _worker_checker.check_chunk(chunk)


def _chunks(rows):
    rows = iter(rows)
    while chunk := list(itertools.islice(rows, CHUNK)):
        yield chunk


def check_files(paths, standard, context: Context, jobs=None, progress=None):
    """Yield a ``RowResult`` per data row of every file, in order.

    ``progress(rows_done)`` is called after every chunk. Raises
    ``tabular.FileError`` for a file that cannot be read.
    """
    checker = RowChecker(standard, context)
    jobs = jobs or os.cpu_count() or 1
    try:
        total_bytes = sum(os.path.getsize(p) for p in paths)
    except OSError as exc:
        raise FileError(f"{exc.filename}: {exc.strerror}") from None
    pool = None
    if jobs > 1 and total_bytes > PARALLEL_ABOVE_BYTES:
        pool = multiprocessing.Pool(jobs, _start_worker, (checker,))
    done = 0
    try:
        for path in paths:
            kind = file_format(path)
            chunks = ((str(path), kind, chunk) for chunk in _chunks(read_rows(path)))
            results = (pool.imap(_worker_check, chunks) if pool
                       else map(checker.check_chunk, chunks))
            for checked in results:
                for row, errors in checked:
                    yield RowResult(str(path), row, errors)
                done += len(checked)
                if progress:
                    progress(done)
    finally:
        if pool:
            pool.terminate()
            pool.join()
