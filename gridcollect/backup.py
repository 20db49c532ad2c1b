"""Online backup: a consistent copy of a live database, its photos and its releases.

A backup is one new folder holding what the server keeps beside each other: the
database, ``<name>-photos/`` and ``<name>-releases/``. Serving the copy
(``server.py --db FOLDER/<name>``) restores it.

The database is copied with SQLite's backup API in one step: one read transaction,
so the copy is the database as it was at one moment, while the server goes on
writing (in WAL mode readers and writers never wait for each other). Photos and
release files never change once written, and a photo's file is written before its
row: every file the copy names exists, and is copied after it.

Everything is built in a hidden staging folder beside the target, checked
(``PRAGMA integrity_check``), and renamed into place in one step: a backup that
fails or is killed leaves nothing at the target, and never touches what is
there. The staging folder is locked while in use; the next backup removes the
staging folders of backups that died.
"""
from __future__ import annotations

import fcntl
import os
import pathlib
import secrets
import shutil
import sqlite3

from . import clock, store, workflow


class BackupError(Exception):
    pass


def _fsync(path):
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _copy(source: pathlib.Path, target: pathlib.Path):
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    _fsync(target)


def _remove_dead_stagings(target: pathlib.Path):
    for staging in target.parent.glob(f".{target.name}.partial-*"):
        try:
            handle = os.open(staging, os.O_RDONLY)
        except FileNotFoundError:
            continue  # another backup removed it meanwhile
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a backup still running
        finally:
            os.close(handle)
        shutil.rmtree(staging, ignore_errors=True)


def backup(db, db_path, target, actor: str) -> dict:
    """Copy the database at ``db_path`` (open as ``db``) into the new folder ``target``;
    returns what was copied: submissions, photos, releases, bytes."""
    target = pathlib.Path(target).resolve()
    if target.exists():
        raise BackupError(f"{target} exists: a backup goes into a new folder and never "
                          f"overwrites anything")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)  # backups/2026-12-03: made
    except OSError as exc:
        raise BackupError(f"{target.parent}: {exc.strerror}") from None
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent}: not a folder")
    _remove_dead_stagings(target)
    name = pathlib.Path(db_path).name
    staging = target.with_name(f".{target.name}.partial-{os.getpid()}-{secrets.token_hex(4)}")
    staging.mkdir()
    lock = os.open(staging, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        counts = _stage(db_path, staging / name, pathlib.Path(f"{db_path}-photos"),
                        target / f"{name}-releases")
        _fsync(staging)
        try:
            os.rename(staging, target)  # one step; refused if something non-empty is there
        except OSError as exc:
            raise BackupError(f"{target}: {exc.strerror}; the backup was not put there") \
                from None
        _fsync(target.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        os.close(lock)
    counts["bytes"] = (target / name).stat().st_size
    at = clock.iso(clock.now())
    with store.write(db):
        store.audit(db, [(at, actor, "backup", "database", None,
                          {"target": str(target), **counts})])
    return counts


def _stage(db_path, copy_path: pathlib.Path, photo_dir: pathlib.Path,
           final_releases: pathlib.Path) -> dict:
    copy = sqlite3.connect(copy_path, isolation_level=None)
    try:
        source = sqlite3.connect(str(db_path), timeout=store.BUSY_TIMEOUT_S)
        try:
            source.backup(copy)  # pages=-1: the whole file in one read transaction
        finally:
            source.close()
        counts = _copy_files(copy, photo_dir, pathlib.Path(f"{copy_path}-photos"),
                             pathlib.Path(f"{copy_path}-releases"), final_releases)
        check = copy.execute("PRAGMA integrity_check").fetchall()
        if check != [("ok",)]:
            raise BackupError(f"the copy failed its integrity check: {check[:5]}")
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        copy.close()
    _fsync(copy_path)
    return counts


def _copy_files(copy, photo_dir, photos, releases, final_releases) -> dict:
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
        moved.append((str(final_releases / source.name), release_id))
    copy.execute("BEGIN")
    copy.executemany("UPDATE releases SET file = ? WHERE id = ?", moved)
    copy.execute("UPDATE releases SET state = 'failed' WHERE state = 'building'")
    copy.execute("COMMIT")
    submissions = copy.execute("SELECT count(*) FROM submissions").fetchone()[0]
    return {"submissions": submissions, "photos": copied_photos, "releases": len(moved)}
