"""Merge: what a confirmed submission does to its master record (SPEC.md section 6).

Pure rules, no SQL: given the current master record (or None) and a submission,
``apply`` decides the new record and its history entry, or a conflict. Master
records are derived data; replaying every confirmed submission in merge order
(``force=True``, the checks having passed or been overruled when it was
confirmed) arrives at the same tables — ``gridcollect rebuild`` does that.
"""
from __future__ import annotations

from dataclasses import dataclass

# why a merge stopped: the submission waits in state ``conflict`` for a supervisor
CONFLICTS = {
    "stale_base_version": "the record changed after the worker downloaded it",
    "no_record": "there is no such record in this grid to retire",
    "retired": "the record is already retired",
}


@dataclass(frozen=True)
class Outcome:
    record: dict | None = None  # the master record as it now is
    history: dict | None = None  # what changed, with its provenance
    conflict: dict | None = None  # {"reason", "version"}: nothing changed
    needs_move: bool = False  # the record is in another grid, which has not agreed

    @property
    def changed(self) -> bool:
        return self.record is not None


def record_key(submission: dict) -> str:
    """Records with a natural key are found by it; every event is its own record."""
    key = submission["natural_key"]
    return key if key is not None else str(submission["id"])


def apply(current: dict | None, submission: dict, seq: int, by: str, at: str,
          force: bool = False, may_move: bool = False) -> Outcome:
    """Merge ``submission`` (confirmed by ``by`` at ``at``) into ``current``.

    A record lives in one grid at a time, and the submission's grid sees only its
    own: a record in another grid is, to it, as if missing, unless ``may_move`` (the
    reviewer oversees the grid the record is in, and may let it move). Without that,
    its version is 0 for the base-version check (a conflict tells nothing of it), and
    an upsert changes nothing (``needs_move``): the submission waits for the
    agreement of the record's grid. A retire finds only a record of its own grid.

    ``force`` is a supervisor's decision to merge a submission that met a conflict:
    stale or not, it lands on the current version (retiring a record already
    retired changes nothing). It never stands in for the agreement to a move.
    """
    grid = submission["grid_code"]
    here = current if current is not None and current["grid_code"] == grid else None
    seen = current if may_move else here
    version = seen["version"] if seen else 0
    base = submission["base_version"]
    if not force and base is not None and base != version:
        return Outcome(conflict={"reason": "stale_base_version", "version": version})
    if submission["action"] == "retire":
        if here is None:  # never forced: a grid retires only its own records
            return Outcome(conflict={"reason": "no_record", "version": 0})
        if here["retired"]:
            return Outcome() if force else Outcome(
                conflict={"reason": "retired", "version": version})
        record = {**here, "version": version + 1, "retired": True, "updated_at": at,
                  "seq": seq}
        return Outcome(record, _history(record, submission, "retire", {}, None, by, at))
    if current is not None and here is None and not may_move:
        return Outcome(needs_move=True)
    version = current["version"] if current else 0
    old = current["data"] if current else {}
    new = submission["data"]
    changes = {name: [old.get(name), value] for name, value in new.items()
               if old.get(name) != value}
    record = {"record_type": submission["record_type"], "key": record_key(submission),
              "grid_code": grid, "version": version + 1, "retired": False,
              "data": {**old, **new}, "created_at": current["created_at"] if current else at,
              "updated_at": at, "seq": seq}
    action = ("create" if current is None else "restore" if current["retired"]
              else "update")
    moved_from = current["grid_code"] if current and current["grid_code"] != grid else None
    return Outcome(record, _history(record, submission, action, changes, moved_from, by, at))


def _history(record, submission, action, changes, moved_from, by, at) -> dict:
    return {"seq": record["seq"], "record_type": record["record_type"], "key": record["key"],
            "version": record["version"], "action": action, "submission_id": submission["id"],
            "grid_code": submission["grid_code"], "moved_from": moved_from,
            "changes": changes, "worker": submission["worker"],
            "collected_at": submission["collected_at"], "confirmed_by": by, "confirmed_at": at}


def provenance(history: list) -> dict:
    """field -> the history entry that last set its current value."""
    sources = {}
    for entry in sorted(history, key=lambda h: h["version"]):
        for name in entry["changes"]:
            sources[name] = {k: entry[k] for k in ("version", "submission_id", "worker",
                                                   "collected_at", "confirmed_by",
                                                   "confirmed_at")}
    return sources
