"""Online backup: a consistent copy of a live database, its photos and its releases.

The database is copied with SQLite's backup API in one step: one read transaction,
so the copy is the database as it was at one moment, while the server goes on
writing (in WAL mode readers and writers never wait for each other). Photos and
release files never change once written, and a photo's file is written before its
row: every file the copy names exists, and is copied after it. The copy is laid out
as the server expects (``PATH``, ``PATH-photos``, ``PATH-releases``), so serving
``--db PATH`` restores it, and it is checked (``PRAGMA integrity_check``) before it
takes its name: a backup that fails or is killed leaves no file at ``PATH``.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import sqlite3

from . import clock, store, workflow


class BackupError(Exception):
    pass


def _fsync(path):
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _copy(source: pathlib.Path, target: pathlib.Path):
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    _fsync(target)


def backup(db, db_path, target, actor: str) -> dict:
    """Copy the database at ``db_path`` (open as ``db``) to ``target``; returns what
    was copied: submissions, photos, releases, bytes."""
    target = pathlib.Path(target).resolve()
    photos, releases = (pathlib.Path(f"{target}{suffix}") for suffix in ("-photos",
                                                                          "-releases"))
    for path in (target, pathlib.Path(f"{target}-wal"), photos, releases):
        if path.exists():
            raise BackupError(f"{path} exists: a backup never overwrites anything")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent}: no such folder")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        copy = sqlite3.connect(partial, isolation_level=None)
        try:
            source = sqlite3.connect(str(db_path), timeout=store.BUSY_TIMEOUT_S)
            try:
                source.backup(copy)  # pages=-1: the whole file in one read transaction
            finally:
                source.close()
            counts = _copy_files(copy, pathlib.Path(f"{db_path}-photos"), photos, releases)
            check = copy.execute("PRAGMA integrity_check").fetchall()
            if check != [("ok",)]:
                raise BackupError(f"the copy failed its integrity check: {check[:5]}")
            copy.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            copy.close()
        _fsync(partial)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        for folder in (photos, releases):
            shutil.rmtree(folder, ignore_errors=True)
        raise
    counts["bytes"] = target.stat().st_size
    at = clock.iso(clock.now())
    with store.write(db):
        store.audit(db, [(at, actor, "backup", "database", None,
                          {"target": str(target), **counts})])
    return counts


def _copy_files(copy, photo_dir, photos, releases) -> dict:
    """Copy the photos and the ready release files the copied database names; a
    release still building at the snapshot is failed in the copy."""
    copied_photos = 0
    for (digest,) in copy.execute("SELECT DISTINCT sha256 FROM photos"):
        _copy(workflow.photo_path(photo_dir, digest), workflow.photo_path(photos, digest))
        copied_photos += 1
    ready = copy.execute("SELECT id, file FROM releases WHERE state = 'ready'").fetchall()
    moved = []
    for release_id, file in ready:
        source = pathlib.Path(file)
        if not source.is_file():
            raise BackupError(f"release {release_id}: its file {source} is missing")
        _copy(source, releases / source.name)
        os.chmod(releases / source.name, 0o444)
        moved.append((str(releases / source.name), release_id))
    copy.execute("BEGIN")
    copy.executemany("UPDATE releases SET file = ? WHERE id = ?", moved)
    copy.execute("UPDATE releases SET state = 'failed' WHERE state = 'building'")
    copy.execute("COMMIT")
    submissions = copy.execute("SELECT count(*) FROM submissions").fetchone()[0]
    return {"submissions": submissions, "photos": copied_photos, "releases": len(moved)}
