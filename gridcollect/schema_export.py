"""The effective standards of a grid as documents a phone can download: gridcollect's
own form (rules, labels, code tables) and JSON Schema (draft 2020-12) for any app.

JSON Schema cannot run the national check algorithms (GB 11643 check
characters, GB 32100, grid geometry); each field names them under
``x-gridcollect-checks``, and the server always runs them. Values are
described in their normalised form (the server also accepts e.g. full-width
digits or a lower-case ``x`` and normalises them, see ``x-gridcollect-coerce``).
"""
from __future__ import annotations

import hashlib

from .standards import RECORD_TYPES

_TYPES = {"string": "string", "integer": "integer", "number": "number",
          "boolean": "boolean", "list": "array", "dict": "object"}


def etag(standards, grid_code: str, form: str) -> str:
    digests = [standards.effective(rt, grid_code).digest for rt in RECORD_TYPES]
    return hashlib.sha256(f"{form}:{':'.join(digests)}".encode()).hexdigest()[:32]


def native(standards, grid_code: str) -> dict:
    """Every record type's fields with rules and metadata, and their code tables."""
    out, tables = {}, set()
    for record_type in RECORD_TYPES:
        standard = standards.effective(record_type, grid_code)
        fields = []
        for spec in standard.fields.values():
            fields.append({
                "name": spec.name, "label": {"zh": spec.label_zh, "en": spec.label_en},
                "description": spec.description, "type": spec.type,
                "required": spec.required, "natural_key": spec.natural_key,
                "sensitivity": spec.sensitivity, "standard": spec.standard,
                "code_table": spec.code_table,
                "rules": {k: v for k, v in spec.rules.items() if k != "allowed"
                          or spec.code_table is None}})
            if spec.code_table:
                tables.add(spec.code_table)
        out[record_type] = {"version": standard.version, "digest": standard.digest,
                            "label": {"zh": standard.label_zh, "en": standard.label_en},
                            "natural_key": standard.natural_key, "fields": fields}
    code_tables = {}
    for name in sorted(tables):
        table = standards.code_tables[name]
        code_tables[name] = {"standard": table.standard,
                             "title": {"zh": table.title_zh, "en": table.title_en},
                             "codes": {code: entry.label for code, entry in table.codes.items()}}
    return {"grid_code": grid_code, "standards": out, "code_tables": code_tables}


def json_schemas(standards, grid_code: str) -> dict:
    return {"grid_code": grid_code,
            "schemas": {rt: json_schema(standards.effective(rt, grid_code), standards)
                        for rt in RECORD_TYPES}}


def json_schema(standard, standards) -> dict:
    properties, required = {}, []
    for spec in standard.fields.values():
        prop = _rules(spec.rules)
        prop["title"] = f"{spec.label_zh} / {spec.label_en}"
        if spec.description:
            prop["description"] = spec.description
        prop["x-gridcollect-sensitivity"] = spec.sensitivity
        if spec.code_table:
            table = standards.code_tables[spec.code_table]
            prop["x-gridcollect-code-table"] = {
                "name": table.name, "standard": table.standard,
                "labels": {code: entry.label for code, entry in table.codes.items()}}
        properties[spec.name] = prop
        if spec.required:
            required.append(spec.name)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"gridcollect:{standard.record_type}:{standard.version}",
            "title": f"{standard.label_zh} / {standard.label_en}",
            "type": "object", "properties": properties, "required": required,
            "additionalProperties": False,
            "x-gridcollect-version": standard.version,
            "x-gridcollect-natural-key": standard.natural_key}


# checks whose values JSON Schema names: a real date; a timestamp (sent with or
# without its offset, which the server adds: China time; stored with it, RFC 3339)
_FORMATS = {"date": "date", "timestamp": "date-time"}


def _rules(rules: dict) -> dict:
    schema = {"type": _TYPES[rules["type"]]}
    if rules.get("nullable"):
        schema["type"] = [schema["type"], "null"]
    if "allowed" in rules:
        if rules["type"] == "list":
            schema["items"] = {"enum": list(rules["allowed"])}
        else:
            schema["enum"] = list(rules["allowed"])
    if "regex" in rules:
        schema["pattern"] = f"^(?:{rules['regex']})$"
    if rules.get("empty") is False and rules["type"] in ("string", "list"):
        schema["minLength" if rules["type"] == "string" else "minItems"] = 1
    for rule, key_string, key_number, key_list in (
            ("minlength", "minLength", None, "minItems"),
            ("maxlength", "maxLength", None, "maxItems"),
            ("min", None, "minimum", None), ("max", None, "maximum", None)):
        if rule in rules:
            key = {"string": key_string, "list": key_list}.get(rules["type"], key_number)
            if key:
                schema[key] = rules[rule]
    if rules["type"] == "dict" and "schema" in rules:
        schema["properties"] = {k: _rules(v) for k, v in rules["schema"].items()}
        schema["required"] = [k for k, v in rules["schema"].items() if v.get("required")]
        schema["additionalProperties"] = False
    elif rules["type"] == "list" and "schema" in rules:
        schema.setdefault("items", {}).update(_rules(rules["schema"]))
    checks = rules.get("check_with")
    if checks:
        checks = [checks] if isinstance(checks, str) else list(checks)
        schema["x-gridcollect-checks"] = checks
        for check, form in _FORMATS.items():
            if check in checks and schema["type"] == "string":
                schema["format"] = form  # an annotation: a validator may also assert it
    if "coerce" in rules:
        schema["x-gridcollect-coerce"] = rules["coerce"]
    return schema
