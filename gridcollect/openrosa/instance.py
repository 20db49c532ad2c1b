"""A filled-in form (an XForm instance from ODK Collect, KoboCollect or Enketo) as the
item of a batch that ``workflow.submit`` takes: the same validation, idempotency,
review and merge as the JSON API's.

The form's id names the record type and the grid; ``meta/instanceID`` is the
submission's ``client_id`` (a re-send is stored once); ``end`` (when the worker
finished the form, ``gc_end``) is ``collected_at``; ``gc_base_version`` comes from the record
look-up. Values are typed as the standard's fields are (integers, decimals, a
space-separated select_multiple as a list, a geopoint as ``{"lat", "lon"}``); an
answer left empty is not sent at all.
"""
from __future__ import annotations

import re

import defusedxml.ElementTree as ElementTree

from .. import clock
from .xlsform import BASE_VERSION, END, PHOTO, parse_form_id

MAX_INSTANCE_BYTES = 1024 * 1024


class InstanceError(ValueError):
    """Not a submission of one of our forms: the reason, in a sentence."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse(xml: bytes, standards) -> dict:
    """The batch item of an instance, with ``photo`` (the attachment's file name, or
    None) and ``deprecated`` (the instanceID an edit replaces, or None)."""
    if len(xml) > MAX_INSTANCE_BYTES:
        raise InstanceError("the form's XML is larger than 1 MB")
    try:
        root = ElementTree.fromstring(xml)
    except Exception as exc:  # ParseError, and defusedxml's refusals of entities and DTDs
        raise InstanceError(f"the form's XML cannot be read: {type(exc).__name__}") from None
    form = parse_form_id(root.get("id"))
    if form is None:
        raise InstanceError(f"not a gridcollect form: {root.get('id')!r}")
    record_type, grid_code = form
    children = {_local(child.tag): child for child in root}
    meta = {_local(child.tag): (child.text or "").strip()
            for child in children.get("meta", [])}
    client_id = meta.get("instanceID", "")
    if not client_id:
        raise InstanceError("meta/instanceID is missing")
    if len(client_id) > 100:  # not cut: two long ids alike in their start are two entries
        raise InstanceError("meta/instanceID is longer than 100 characters")
    standard = standards.effective(record_type, grid_code)
    data = {}
    for name, spec in standard.fields.items():
        element = children.get(name)
        text = (element.text or "").strip() if element is not None else ""
        if text:
            data[name] = _typed(spec, text)
    finished = (children[END].text or "").strip() if END in children else ""
    try:
        collected_at = clock.parse(finished) if finished else clock.now()
    except ValueError:
        raise InstanceError(f"end is not a time: {finished[:40]!r}") from None
    base = (children[BASE_VERSION].text or "").strip() if BASE_VERSION in children else ""
    photo = (children[PHOTO].text or "").strip() if PHOTO in children else ""
    return {"client_id": client_id, "record_type": record_type, "grid_code": grid_code,
            "action": "upsert", "data": data, "collected_at": collected_at,
            "base_version": int(base) if base.isascii() and base.isdigit() else None,
            "replaces": None, "photo": photo or None,
            "deprecated": meta.get("deprecatedID") or None}


def _typed(spec, text: str):
    """The value as the standard's type holds it; text the standard will refuse with
    its own message when it is not one (``type``)."""
    kind = spec.type
    if kind in ("integer", "number", "float"):
        try:  # ASCII as XForms write numbers: not "１２", "1_000" or "nan"
            if kind == "integer" and re.fullmatch(r"-?[0-9]{1,18}", text):
                return int(text)
            if kind != "integer" and re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", text):
                return float(text)
        except ValueError:
            pass
        return text
    if kind == "boolean":
        return {"true": True, "false": False}.get(text, text)
    if kind == "list":
        return text.split()
    if kind == "dict" and {"lat", "lon"} <= set(spec.rules.get("schema", {})):
        parts = text.split()
        try:
            return {"lat": float(parts[0]), "lon": float(parts[1])}
        except (IndexError, ValueError):
            return text
    return text
