"""Field values as a person reads them: the field's label, a code with its meaning, a
list joined, a location as coordinates."""
from __future__ import annotations

from . import lang


def label(spec, name: str) -> str:
    if spec is None:
        return name
    return spec.label_en if lang() == "en" else spec.label_zh


def shown(standards, spec, value) -> str:
    """The text of a value; a code of a code table with its meaning."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "、".join(shown(standards, spec, v) for v in value)
    if isinstance(value, dict):
        if set(value) >= {"lat", "lon"}:
            return f"{value['lat']}, {value['lon']}"
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, bool):
        return "✓" if value else "✗"
    table = standards.code_tables.get(spec.code_table) if spec and spec.code_table else None
    if table is not None and not table.checked_by:
        entry = table.codes.get(str(value))
        if entry is not None:
            return f"{value} {entry.label}"
    return str(value)


def field_rows(standards, standard, proposed: dict, current: dict | None,
               provenance: dict) -> list:
    """One row per field of the standard (and any other field either side has): its
    label and code, the current value and what set it, the proposed value."""
    names = list(standard.fields)
    names += [n for n in {**(current or {}), **proposed} if n not in standard.fields]
    rows = []
    for name in names:
        spec = standard.fields.get(name)
        in_proposal = name in proposed
        now = (current or {}).get(name)
        rows.append({
            "name": name, "label": label(spec, name),
            "required": bool(spec and spec.required),
            "current": shown(standards, spec, now) if current is not None else None,
            "proposed": shown(standards, spec, proposed.get(name)) if in_proposal else None,
            "in_proposal": in_proposal,
            "changed": in_proposal and current is not None and now != proposed.get(name),
            "new": in_proposal and current is None,
            "source": provenance.get(name)})
    return [r for r in rows if r["in_proposal"] or r["current"] not in (None, "")]
