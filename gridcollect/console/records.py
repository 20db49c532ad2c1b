"""Records: search the master tables by key or field value; one record with its
history and provenance. Masked per role exactly as the API: the same domain calls."""
from __future__ import annotations

import flask

from .. import access, errors, records
from ..standards import RECORD_TYPES
from . import PageError, blp, clean, db, page, render, runtime, user
from .values import label, shown

ROWS = 50


def _record_type(text) -> str:
    if text not in RECORD_TYPES:
        raise PageError(404)
    return text


@blp.route("/records")
@page("read_records")
def records_page():
    args = flask.request.args
    rt = runtime()
    record_type = args.get("type") or "person"
    if record_type not in RECORD_TYPES:
        record_type = "person"
    fields = rt.standards.all_fields(record_type)
    masking = access.masking(user(), fields)
    key_field = rt.standards.effective(record_type).natural_key
    key = clean(args.get("key"))
    key_clear = key_field is None or masking.view(key_field) == access.CLEAR
    if key and key_field:  # a masked key is no way in: not even kept in the URL
        return flask.redirect(flask.url_for("console.record", record_type=record_type,
                                            key=key) if key_clear else
                              flask.url_for("console.records_page", type=record_type))
    field, value = args.get("field") or "", clean(args.get("value"))
    problem = None
    refused = args.get("refused")
    if refused in ("unknown_filter", "masked_filter", "bad_filter_value", "unfilterable"):
        problem = errors.problem(refused, field=args.get("refused_field", ""),
                                 record_type=record_type)[1]
    filters = []
    if field and value:
        try:
            filters = records.field_filters(rt.standards, user(), record_type,
                                            {field: [value]})
        except records.BadFilter as exc:  # said without the value (a masked one's is what
            return flask.redirect(flask.url_for(  # the mask hides), nor kept in the URL
                "console.records_page", type=record_type, refused=exc.problem,
                refused_field=exc.field))
    rows = []
    if problem is None:
        rows = records.list_records(db(), rt.standards, user(), record_type, limit=ROWS,
                                    filters=filters)
    searchable = [(name, label(spec, name)) for name, spec in fields.items()
                  if masking.view(name) == access.CLEAR and spec.type in (
                      "string", "integer", "list", "boolean")]
    columns = [name for name in list(fields)[:6] if masking.view(name) != access.OMIT]
    return render("console/records.html", record_type=record_type, rows=[
        {**r, "cells": [shown(rt.standards, fields.get(c), r["data"].get(c)) for c in columns]}
        for r, _ in rows], columns=[(c, label(fields.get(c), c)) for c in columns],
        key_clear=key_clear,
        key_field=key_field, searchable=searchable, field=field, value=value,
        problem=problem, record_types=RECORD_TYPES, key=key)


@blp.route("/records/<record_type>/<path:key>")
@page("read_records")
def record(record_type, key):
    rt = runtime()
    record_type = _record_type(record_type)
    try:
        found = records.get_record(db(), rt.standards, user(), record_type, key)
    except (records.NotFound, records.BadFilter):
        raise PageError(404) from None
    fields = rt.standards.all_fields(record_type)
    rows = [{"name": name, "label": label(fields.get(name), name),
             "value": shown(rt.standards, fields.get(name), value),
             "source": found["provenance"].get(name)}
            for name, value in found["data"].items()]
    history = [{**entry, "changes": [
        (label(fields.get(name), name), shown(rt.standards, fields.get(name), old),
         shown(rt.standards, fields.get(name), new))
        for name, (old, new) in entry["changes"].items()]}
        for entry in reversed(found["history"])]
    return render("console/record.html", r=found, rows=rows, history=history,
                  record_type=record_type)
