"""Collect and confirm: what happens to a batch from a phone and to a review.

Pure domain: no Flask, no SQL (queries live in ``store``). A submission is
immutable once received; a review moves it from ``pending`` to ``confirmed``,
``rejected`` or ``returned`` exactly once; a correction of a returned
submission is a new submission that names the one it replaces.
"""
from __future__ import annotations

import datetime
import hashlib
import itertools
import os
import pathlib
import re
import threading
from dataclasses import dataclass

import shapely

from . import access, clock, errors, merge, store
from .checks import CLOCK_SKEW, Context
from .grids import Grid, is_grid_code

PENDING = "pending"
# confirmed by its reviewer, but it would move a record from a grid the reviewer does not
# oversee: it waits for the agreement of that grid (``decide_move``)
AWAITING_MOVE = "awaiting_move"
STATES = ("pending", "confirmed", "rejected", "returned", "conflict", AWAITING_MOVE)
REVIEW_ACTIONS = {"confirm": "confirmed", "reject": "rejected", "return": "returned"}
NOTE_REQUIRED = {"reject", "return", "refuse"}
# a note (a review's, a release's) is what a person reads: text, without control or
# bidirectional-override characters that would make it read as something else
NOTE_TEXT = re.compile(r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
                       r"\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]*\Z")
MAX_NOTE = 2000
ACTIONS = ("upsert", "retire")
MAX_BATCH = 500  # submissions sent, or reviewed, at once
MOVE_DECISIONS = {"accept": "accepted", "refuse": "refused"}
# who a refused submission shows as its reviewer: the other grid, unnamed (the person who
# refused, and where, are in the move request and the audit log, which its side reads)
REFUSED_BY = "另一网格 / the record's grid"
# how long before its receipt an entry may have been collected (a phone offline for
# days, a paper form typed in weeks later); earlier is a wrong clock or a wrong value
COLLECT_WINDOW = datetime.timedelta(days=365)


class NotFound(Exception):
    """Missing, or outside the caller's scope: the two are never told apart."""


class NotPending(Exception):
    def __init__(self, state):
        super().__init__(state)
        self.state = state


class NoteRequired(Exception):
    pass


class BadNote(ValueError):
    """A note too long, or with control or bidi characters."""


class PhotoClosed(Exception):
    pass


class NotOpen(Exception):
    """The move request was already decided (or withdrawn)."""

    def __init__(self, state):
        super().__init__(state)
        self.state = state


# --- grids, cached per process --------------------------------------------------------

class GridCache:
    """Grid cells with parsed geometry, reloaded when a grid's revision changes."""

    def __init__(self, size=50_000):
        self._grids = {}
        self._size = size
        self._lock = threading.Lock()

    def get(self, db, code: str) -> Grid | None:
        if not is_grid_code(code):
            return None
        revision = store.grid_revision(db, code)
        if revision is None:
            return None
        cached = self._grids.get(code)
        if cached is not None and cached[0] == revision:
            return cached[1]
        row = store.get_grid(db, code)
        if row is None:
            return None
        geometry = shapely.from_geojson(row["geometry"]) if row["geometry"] else None
        grid = Grid(code, row["name"], geometry)
        with self._lock:
            if len(self._grids) >= self._size:
                self._grids.clear()
            self._grids[code] = (row["revision"], grid)
        return grid


# --- collect --------------------------------------------------------------------------

@dataclass
class _Item:
    index: int
    raw: dict
    status: str = ""
    id: int | None = None
    errors: list | None = None
    row: dict | None = None
    copy_of: _Item | None = None  # the same client_id earlier in this batch


def submit(db, standards, grids: GridCache, user: access.User, items: list,
           window: datetime.timedelta = COLLECT_WINDOW) -> list:
    """Store a batch from a phone; one result per item, in request order.

    Items are dicts already shaped by the API schema: ``client_id``,
    ``record_type``, ``grid_code``, ``action``, ``data`` (dict), ``collected_at``
    (aware datetime), ``base_version`` and ``replaces`` (int or None). An item
    collected more than ``window`` before now is invalid.
    """
    now = clock.now()
    received_at = clock.iso(now)
    batch = [_Item(i, raw) for i, raw in enumerate(items)]
    seen = store.existing_submissions(db, user.username, {i.raw["client_id"] for i in batch})
    first_in_batch = {}
    invalid_attempts = []
    contexts = {}
    awaiting = None  # the worker's returned submissions, fetched when first needed
    for item in batch:
        raw = item.raw
        if raw["client_id"] in seen:
            item.status, item.id = "duplicate", seen[raw["client_id"]]
            continue
        if raw["client_id"] in first_in_batch:  # the same item twice in one batch
            item.copy_of = first_in_batch[raw["client_id"]]
            continue
        first_in_batch[raw["client_id"]] = item
        grid_code = raw["grid_code"]
        if not (access.in_scope(user, grid_code) and is_grid_code(grid_code)):
            item.status = "forbidden"
            continue
        if grid_code not in contexts:
            grid = grids.get(db, grid_code)
            contexts[grid_code] = None if grid is None else Context(grid, now)
        if contexts[grid_code] is None:  # no such grid: as forbidden as another's grid
            item.status = "forbidden"
            continue
        standard = standards.effective(raw["record_type"], grid_code)
        document, field_errors = _check(standard, raw, contexts[grid_code], now - window)
        if awaiting is None and raw.get("replaces") is None and standard.natural_key:
            awaiting = store.awaiting_correction(db, user.username)
        replaces, replace_error = _replaces(db, user, raw, standard, document, awaiting)
        if replace_error:
            field_errors.append(replace_error)
        if field_errors:
            item.status, item.errors = "invalid", field_errors
            invalid_attempts.append({
                "worker": user.username, "client_id": raw["client_id"],
                "record_type": raw["record_type"], "grid_code": grid_code, "at": received_at,
                "errors": [e.as_dict() for e in field_errors]})
            continue
        item.status = "accepted"
        item.row = {
            "worker": user.username, "client_id": raw["client_id"],
            "record_type": raw["record_type"], "grid_code": grid_code,
            "action": raw["action"],
            "natural_key": document.get(standard.natural_key) if standard.natural_key else None,
            "data": document, "state": PENDING,
            "collected_at": clock.iso(raw["collected_at"]), "received_at": received_at,
            "standard_version": standard.version, "base_version": raw.get("base_version"),
            "replaces": replaces, "explicit_replaces": raw.get("replaces") is not None}
    _store_batch(db, user, batch, invalid_attempts, received_at)
    for item in batch:
        first = item.copy_of
        if first is None:
            continue
        if first.status in ("accepted", "duplicate"):  # answered like a resent item
            item.status, item.id = "duplicate", first.id
        else:  # the first copy was not stored: its verdict, not a duplicate of nothing
            item.status, item.errors = first.status, first.errors
    return [{"client_id": i.raw["client_id"], "status": i.status, "id": i.id,
             "errors": [e.as_dict() for e in i.errors] if i.errors else []} for i in batch]


def _check(standard, raw, context, oldest) -> tuple:
    """The normalised record and its field errors."""
    field_errors = []
    for code, wrong in (("future", raw["collected_at"] > context.now + CLOCK_SKEW),
                        ("too_old", raw["collected_at"] < oldest)):
        if wrong:
            field_errors.append(errors.FieldError(
                "collected_at", code, errors.message(code, "采集时间", "Collected at")))
    if raw["action"] == "upsert":
        result = standard.validate(raw["data"], context.grid, context.now)
        return result.document, field_errors + list(result.errors)
    key = standard.natural_key
    if key is None:
        return {}, field_errors + [standard.error("", "not_retirable")]
    # retiring names the record by its natural key; other fields are not needed
    result = standard.validate({key: raw["data"].get(key)} if key in raw["data"] else {},
                               context.grid, context.now)
    key_errors = [e for e in result.errors if e.field.split(".")[0] == key]
    return {key: result.document.get(key)}, field_errors + key_errors


def _replaces(db, user, raw, standard, document, awaiting) -> tuple:
    """(id of the returned submission this one corrects, or None; error or None)."""
    wanted = raw.get("replaces")
    if wanted is not None:
        original = store.get_submission(db, wanted)
        if (original is None or original["worker"] != user.username
                or original["state"] != "returned" or original["replaced_by"] is not None
                or original["record_type"] != raw["record_type"]):
            return None, errors.FieldError("replaces", "not_replaceable", errors.message(
                "not_replaceable", "被更正的提交", "Replaces"))
        return wanted, None
    key = standard.natural_key
    if key and isinstance(document.get(key), str):  # not a list or dict sent by mistake
        return awaiting.get((raw["record_type"], document[key])), None
    return None, None


def _store_batch(db, user, batch, invalid_attempts, received_at):
    """One transaction: what a concurrent copy of this batch stored first wins."""
    to_store = [i for i in batch if i.status == "accepted"]
    if not to_store and not invalid_attempts:
        return
    with store.write(db):
        raced = store.existing_submissions(db, user.username,
                                           [i.raw["client_id"] for i in to_store])
        stored, claimed = [], set()  # a returned submission is corrected once
        for item in to_store:
            if item.raw["client_id"] in raced:
                item.status, item.id, item.row = "duplicate", raced[item.raw["client_id"]], None
                continue
            row = item.row
            if row["replaces"] is not None and (row["replaces"] in claimed
                                                or _already_replaced(db, row["replaces"])):
                if row["explicit_replaces"]:  # corrected meanwhile by another batch
                    item.status, item.row = "invalid", None
                    item.errors = [errors.FieldError("replaces", "not_replaceable",
                                                     errors.message("not_replaceable",
                                                                    "被更正的提交", "Replaces"))]
                    continue
                row["replaces"] = None
            if row["replaces"] is not None:
                claimed.add(row["replaces"])
            stored.append(item)
        store.insert_submissions(db, [item.row for item in stored])
        ids = store.existing_submissions(db, user.username,
                                         [item.raw["client_id"] for item in stored])
        entries = []
        for item in stored:
            row = item.row
            item.id = ids[row["client_id"]]
            entries.append((received_at, user.username, "submit", "submission", item.id,
                            {"client_id": row["client_id"], "record_type": row["record_type"],
                             "grid_code": row["grid_code"], "action": row["action"],
                             "replaces": row["replaces"]}))
        if invalid_attempts:
            store.add_invalid_attempts(db, invalid_attempts)
        store.audit(db, entries)


def _already_replaced(db, submission_id) -> bool:
    original = store.get_submission(db, submission_id)
    return original is None or original["replaced_by"] is not None


# --- read -----------------------------------------------------------------------------

def get_submission(db, user: access.User, submission_id: int) -> dict:
    submission = store.get_submission(db, submission_id)
    if submission is None or not access.may_read_submission(user, submission):
        raise NotFound(submission_id)
    return submission


def list_submissions(db, user: access.User, limit: int, cursor: int | None, **filters) -> list:
    prefixes, worker = access.submission_filter(user)
    return store.list_submissions(
        db, prefixes=prefixes, worker=worker,
        before_id=cursor, limit=limit, **filters)


QUEUE_STATES = store.QUEUE_STATES


def review_queue(db, user: access.User, *, limit: int, after_id=None, newest_first=False,
                 states=store.QUEUE_STATES, **filters) -> list:
    """What waits in the caller's grids: pending and conflicting submissions, and returned
    ones not yet corrected; oldest first unless ``newest_first``. ``filters``: grid
    (a prefix), record_type, worker, since and until (stored timestamps or dates)."""
    return store.review_queue(db, prefixes=access.prefixes(user), states=states,
                              after_id=after_id, newest_first=newest_first, limit=limit,
                              **filters)


def queue_counts(db, user: access.User, **filters) -> dict:
    """state -> how many of the queue's submissions (with the same filters) are in it."""
    return store.queue_counts(db, prefixes=access.prefixes(user), **filters)


def photos(db, submissions: list) -> dict:
    """submission id -> its photos, for submissions the caller has already read."""
    return store.photos_of(db, [s["id"] for s in submissions])


def photo_file(db, user: access.User, photo_dir, submission_id: int, sha256: str) -> tuple:
    """(path, content type) of a photo of a submission the caller may read."""
    get_submission(db, user, submission_id)
    photo = store.get_photo(db, submission_id, sha256)
    path = photo_path(photo_dir, photo["sha256"]) if photo else None
    if path is None or not path.is_file():
        raise NotFound(sha256)
    return path, photo["content_type"]


# --- grids and the audit log, read ----------------------------------------------------

def list_grids(db, user: access.User, *, under=None, after=None, limit=100) -> list:
    return store.list_grids(db, access.prefixes(user), under, after, limit)


def get_grid(db, user: access.User, code: str) -> dict:
    row = store.get_grid(db, code) if is_grid_code(code) else None
    if row is None or not access.in_scope(user, code):
        raise NotFound(code)
    return row


def import_grids(db, actor: str, cells: dict, area_names: dict, source: str) -> dict:
    """Add or update grid cells (``grids.read_geojson``'s, already checked whole) and
    the names of their areas; one transaction, audited."""
    at = clock.iso(clock.now())
    with store.write(db):
        added, changed = store.upsert_grids(
            db, [(code, grid.name, shapely.to_geojson(grid.geometry))
                 for code, grid in sorted(cells.items())], at)
        renamed = store.upsert_area_names(db, area_names, at)
        figures = {"grids": len(cells), "added": added, "changed": changed,
                   "area_names": renamed}
        store.audit(db, [(at, actor, "grids_import", "grids", None,
                          {"file": source, **figures})])
    return figures


def audit_log(db, *, limit: int, before_id=None, **filters) -> list:
    """Newest first; ``filters``: actor, action, object_type, object_id, since."""
    return store.list_audit(db, before_id=before_id, limit=limit, **filters)


# --- confirm --------------------------------------------------------------------------

def check_note(note: str | None):
    if note is not None and (len(note) > MAX_NOTE or not NOTE_TEXT.match(note)):
        raise BadNote(note[:40])


def check_review(action: str, note: str | None):
    check_note(note)
    if action in NOTE_REQUIRED and not (note or "").strip():
        raise NoteRequired(action)


def review(db, user: access.User, submission_id: int, action: str, note: str | None,
           force: bool = False) -> dict:
    """Confirm (and merge), reject or return one pending or conflicting submission."""
    [result] = review_many(db, user, [submission_id], action, note, force)
    if result["status"] == "not_found":
        raise NotFound(submission_id)
    if result["status"] == "not_pending":
        raise NotPending(result["state"])
    return store.get_submission(db, submission_id)


REVIEWABLE = (PENDING, "conflict")
# rejecting or returning a submission that waits for a move also withdraws the request
WITHDRAWABLE = REVIEWABLE + (AWAITING_MOVE,)


def review_many(db, user: access.User, ids: list, action: str, note: str | None,
                force: bool = False) -> list:
    """One transaction; a result per id, in order: reviewed, not_pending or not_found.

    Confirming merges (``merge.apply``) in request order. A submission in conflict
    is only confirmed with ``force`` (the supervisor's explicit decision that it
    lands on the current version): a plain confirm sent again, say by a retry,
    never overwrites newer data. An upsert of a record that lives in a grid outside
    the reviewer's scope becomes ``awaiting_move``, with a move request to that
    grid (``decide_move``); the reviewer learns no more of the record than that.
    The submissions and records are read at once and written at once: the write
    lock is held for as short a time as the batch allows.
    """
    check_review(action, note)
    note = note.strip() if note else None
    with store.write(db):
        at = clock.iso(clock.now())  # inside the lock: later batches never carry earlier times
        seq = store.last_merge_seq(db)
        submissions = store.get_submissions(db, set(ids))
        records = {}
        if action == "confirm":
            records = store.get_records(db, {(s["record_type"], merge.record_key(s))
                                             for s in submissions.values()})
        reviews, changes, audit, results, reviewed = [], [], [], [], set()
        requests, withdrawn = [], []
        for sid in ids:
            submission = submissions.get(sid)
            if submission is None or not access.may_review(user, submission):
                results.append({"id": sid, "status": "not_found", "state": None})
                continue
            was = submission["state"]
            if was not in (REVIEWABLE if action == "confirm" else WITHDRAWABLE) or (
                    sid in reviewed) or (
                    was == "conflict" and action == "confirm" and not force):
                results.append({"id": sid, "status": "not_pending", "state": was})
                continue
            detail = {"action": action, "note": note}
            state, merge_seq, conflict = REVIEW_ACTIONS[action], None, None
            if action == "confirm":
                key = (submission["record_type"], merge.record_key(submission))
                current = records.get(key)
                outcome = merge.apply(current, submission, seq + 1, user.username, at,
                                      force=was == "conflict",
                                      may_move=may_move(user, current))
                if outcome.conflict:
                    state, conflict = "conflict", outcome.conflict
                    detail["conflict"] = conflict
                elif outcome.needs_move:
                    state = AWAITING_MOVE
                    requests.append((sid, *key, current["grid_code"], user.username, at))
                    detail["move_requested"] = {"from_grid": current["grid_code"]}
                else:
                    seq = merge_seq = seq + 1
                    if outcome.changed:
                        records[key] = outcome.record
                        changes.append(outcome)
                        detail["merged"] = {"record_type": key[0],
                                            "version": outcome.record["version"]}
            elif was == AWAITING_MOVE:
                withdrawn.append(sid)
            submission["state"] = state
            reviewed.add(sid)  # the same id again in this batch: not pending
            reviews.append((sid, was, state, user.username, at, note, merge_seq, conflict))
            audit.append((at, user.username, "review", "submission", sid, detail))
            results.append({"id": sid, "status": "reviewed", "state": state})
        store.set_reviews(db, reviews)
        _merge(db, changes)
        store.request_moves(db, requests)
        store.decide_moves(db, withdrawn, "withdrawn", user.username, at, note)
        store.audit(db, audit)
    return results


def may_move(user: access.User, current: dict | None) -> bool:
    """Whether the reviewer's confirmation is also the agreement of the grid the record
    is in (the reviewer oversees it: its supervisor, a common ancestor's, an admin)."""
    return current is not None and access.may_review(user, current)


def _merge(db, changes: list):
    """Write merged records and their history; open move requests follow a record that
    moved to the grid it is now in."""
    store.put_records(db, [c.record for c in changes])
    store.add_history(db, [c.history for c in changes])
    store.follow_moves(db, [(c.record["record_type"], c.record["key"], c.record["grid_code"])
                            for c in changes if c.history["moved_from"] is not None])


# --- moves between grids --------------------------------------------------------------

def list_moves(db, user: access.User, limit: int, cursor: int | None, grid=None) -> list:
    """Open move requests for records in the caller's grids, oldest first."""
    return store.list_open_moves(db, prefixes=access.prefixes(user), grid=grid,
                                 after_id=cursor, limit=limit)


def get_move(db, user: access.User, submission_id: int) -> dict:
    move = store.get_move(db, submission_id)
    if move is None or not access.may_decide_move(user, move):
        raise NotFound(submission_id)
    return move


def decide_move(db, user: access.User, submission_id: int, action: str,
                note: str | None) -> dict:
    """The grid a record is in accepts a move request (the submission merges now, and the
    record moves) or refuses it (the submission is rejected with the note, which its
    worker reads, signed by no name; the record stays where it is)."""
    check_review(action, note)
    note = note.strip() if note else None
    with store.write(db):
        at = clock.iso(clock.now())
        move = store.get_move(db, submission_id)
        if move is None or not access.may_decide_move(user, move):
            raise NotFound(submission_id)
        if move["state"] != "open":
            raise NotOpen(move["state"])
        submission = store.get_submission(db, submission_id)
        detail = {"from_grid": move["from_grid"], "to_grid": move["to_grid"], "note": note}
        # closed first: the record's move below must not carry this request along
        store.decide_moves(db, [submission_id], MOVE_DECISIONS[action], user.username, at,
                           note)
        if action == "accept":
            key = (submission["record_type"], merge.record_key(submission))
            seq = store.last_merge_seq(db) + 1
            # confirmed by its reviewer, agreed by this grid: it lands as it is now
            outcome = merge.apply(store.get_records(db, {key}).get(key), submission, seq,
                                  submission["review_by"], at, force=True, may_move=True)
            store.set_reviews(db, [(submission_id, AWAITING_MOVE, "confirmed",
                                    submission["review_by"], at, submission["review_note"],
                                    seq, None)])
            if outcome.changed:
                _merge(db, [outcome])
                detail["merged"] = {"record_type": key[0], "version": outcome.record["version"]}
        else:
            store.set_reviews(db, [(submission_id, AWAITING_MOVE, "rejected", REFUSED_BY, at,
                                    note, None, None)])
        store.audit(db, [(at, user.username, f"move_{action}", "submission", submission_id,
                          detail)])
    return store.get_move(db, submission_id)


def migrate(db, now: str) -> list:
    """Bring the database up to date; when master records first appear (migration 3),
    derive them from the submissions confirmed before."""
    applied = store.migrate(db, now)
    if 3 in applied and store.last_merge_seq(db):
        rebuild(db)
    return applied


REBUILD_BATCH = 2000


def rebuild(db) -> dict:
    """Re-derive every master record and its history from the merged submissions, and
    every monitoring figure; one transaction. Counts of records per type."""
    with store.write(db):
        store.clear_records(db)
        merged = store.merged_in_order(db)
        while batch := list(itertools.islice(merged, REBUILD_BATCH)):  # read and written
            records = store.get_records(db, {(s["record_type"], merge.record_key(s))  # at once
                                             for s in batch})
            changes = []
            for submission in batch:
                key = (submission["record_type"], merge.record_key(submission))
                outcome = merge.apply(records.get(key), submission, submission["merge_seq"],
                                      submission["review_by"], submission["review_at"],
                                      force=True, may_move=True)
                if outcome.changed:
                    records[key] = outcome.record
                    changes.append(outcome)
            store.put_records(db, [c.record for c in changes])
            store.add_history(db, [c.history for c in changes])
        store.recount_monitor(db)
        return store.count_records(db)


# --- photos ---------------------------------------------------------------------------

JPEG, PNG = "image/jpeg", "image/png"


def photo_type(content: bytes) -> str | None:
    """The image type when ``content`` is a whole JPEG or PNG file, else None."""
    if content[:3] == b"\xff\xd8\xff" and b"\xff\xd9" in content[-64:]:
        return JPEG
    if (content[:8] == b"\x89PNG\r\n\x1a\n" and content[12:16] == b"IHDR"
            and content.rstrip(b"\x00")[-8:-4] == b"IEND"):
        return PNG
    return None


def attach_photo(db, user: access.User, photo_dir, submission_id: int, content: bytes,
                 content_type: str) -> dict:
    """Store a photo by its SHA-256 and list it on the worker's pending submission."""
    submission = store.get_submission(db, submission_id)
    if submission is None or not access.may_read_submission(user, submission):
        raise NotFound(submission_id)
    if submission["worker"] != user.username or submission["state"] != PENDING:
        raise PhotoClosed()
    digest = hashlib.sha256(content).hexdigest()
    path = photo_path(photo_dir, digest)
    if not path.exists():  # content-addressed: the same photo is stored once
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{digest}.{os.getpid()}.{threading.get_ident()}")
        with open(partial, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    at = clock.iso(clock.now())
    with store.write(db):
        if store.get_submission(db, submission_id)["state"] != PENDING:
            raise PhotoClosed()  # reviewed while the file was written
        if store.add_photo(db, submission_id, digest, content_type, len(content),
                           user.username, at):
            store.audit(db, [(at, user.username, "photo_add", "submission", submission_id,
                              {"sha256": digest, "size": len(content)})])
    return store.get_photo(db, submission_id, digest)


def photo_path(photo_dir, digest: str) -> pathlib.Path:
    return pathlib.Path(photo_dir) / digest[:2] / digest
