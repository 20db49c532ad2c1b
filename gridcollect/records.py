"""Read master records: in the caller's scope, masked for the caller's role, searched
by field values (``?special_groups=独居老人``, ``?usage=2``).

Pure domain: no Flask, no SQL.
"""
from __future__ import annotations

import unicodedata

from . import access, clock, merge, store


class NotFound(Exception):
    """Missing, or outside the caller's scope: the two are never told apart."""


class BadFilter(Exception):
    def __init__(self, field: str, problem: str):
        super().__init__(field, problem)
        self.field, self.problem = field, problem


def field_filters(standards, user: access.User, record_type: str, params: dict) -> list:
    """``[(field, kind, values)]`` from query parameters naming fields of the standard.

    Values are normalised as a phone would send them (NFKC: full-width digits,
    stray spaces) and typed as the field is. A field the caller sees masked or
    not at all cannot be searched: that would reveal what the mask hides.
    """
    fields = standards.all_fields(record_type)
    masking = access.masking(user, fields)
    filters = []
    for name, raw_values in params.items():
        spec = fields.get(name)
        if spec is None:
            raise BadFilter(name, "unknown_filter")
        if masking.view(name) != access.CLEAR:
            raise BadFilter(name, "masked_filter")
        kind = "list" if spec.type == "list" else "value"
        item_type = (spec.rules.get("schema") or {}).get("type", "string") if kind == "list" \
            else spec.type
        values = [_typed(unicodedata.normalize("NFKC", v).strip(), item_type, name)
                  for v in raw_values]
        filters.append((name, kind, values))
    return filters


MAX_FILTER_CHARS = 4000  # twice the longest text a field of the standards allows (2,000)


def _typed(text: str, field_type: str, name: str):
    if len(text) > MAX_FILTER_CHARS:
        raise BadFilter(name, "bad_filter_value")
    try:
        if field_type == "integer":
            value = int(text)
            if not -2 ** 63 <= value < 2 ** 63:  # what SQLite holds
                raise ValueError(text)
            return value
        if field_type in ("number", "float"):
            return float(text)
        if field_type == "boolean":
            return {"true": 1, "false": 0}[text]
    except (ValueError, KeyError):
        raise BadFilter(name, "bad_filter_value") from None
    if field_type != "string":
        raise BadFilter(name, "unfilterable")
    return text


def _shown(record: dict, masking: access.Masking, key_field: str | None) -> dict:
    shown = {k: record[k] for k in ("record_type", "key", "grid_code", "version", "retired",
                                    "updated_at", "created_at")}
    shown["data"] = masking.apply(record["data"])
    if key_field is not None and masking.view(key_field) != access.CLEAR:
        kind = masking.plan.get(key_field) or "other"
        shown["key"] = access.mask(kind, record["key"])
    return shown


def _key_field(standards, record_type):
    return standards.effective(record_type).natural_key


def list_records(db, standards, user: access.User, record_type: str, *, limit: int,
                 after_seq=None, grid=None, changed_since=None, retired=None,
                 filters=()) -> list:
    """(shown records, seq of the last one) in the order they last changed; every page
    read is audited (who, what was asked, how many records)."""
    rows = store.list_records(db, record_type, prefixes=access.prefixes(user), grid=grid,
                              changed_since=changed_since, retired=retired, filters=filters,
                              after_seq=after_seq, limit=limit)
    at = clock.iso(clock.now())
    with store.write(db):
        store.audit(db, [(at, user.username, "records_list", "records", record_type, {
            "grid": grid, "changed_since": changed_since, "retired": retired,
            "after": after_seq, "filters": {name: values for name, _, values in filters},
            "rows": len(rows)})])
    masking = access.masking(user, standards.all_fields(record_type))
    key_field = _key_field(standards, record_type)
    return [(_shown(row, masking, key_field), row["seq"]) for row in rows]


def get_record(db, standards, user: access.User, record_type: str, key: str) -> dict:
    """One record with its history and, per field, the change that set its value; who
    read which record's history is audited."""
    fields = standards.all_fields(record_type)
    masking = access.masking(user, fields)
    key_field = _key_field(standards, record_type)
    if key_field is not None and masking.view(key_field) != access.CLEAR:
        raise BadFilter(key_field, "masked_filter")  # looking up by a masked key
    if key_field is not None:
        key = unicodedata.normalize("NFKC", key).strip().upper()
    record = store.get_record(db, record_type, key)
    if record is None or not access.may_read_record(user, record):
        raise NotFound(key)
    shown = _shown(record, masking, key_field)
    history = store.record_history(db, record_type, key)
    at = clock.iso(clock.now())
    with store.write(db):
        store.audit(db, [(at, user.username, "record_read", "record", f"{record_type}/{key}",
                          {"grid_code": record["grid_code"], "version": record["version"]})])
    shown["history"] = [{**entry, "changes": {
        name: [masking.apply({name: old}).get(name), masking.apply({name: new}).get(name)]
        for name, (old, new) in entry["changes"].items() if masking.view(name) != access.OMIT}}
        for entry in history]
    for entry in shown["history"]:
        del entry["record_type"], entry["key"]
    shown["provenance"] = {name: source for name, source in merge.provenance(history).items()
                           if name in shown["data"]}
    return shown
