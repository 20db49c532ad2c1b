"""Field standards: read ``field_standards/``, check them, resolve per grid cell.

    standards = load_standards()                       # the bundled standards
    person = standards.effective("person", "420502001002003")
    person.version                                     # '2026.1+420502001002.1'
    result = person.validate(record, grid="420502001002003")

A broken standard fails at load time with ``StandardError`` naming the file and
the field. Overlays under ``overlays/<prefix>/<record_type>.yaml`` add fields
or tighten rules for the grid cells under that prefix, widest prefix first.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime
import functools
import hashlib
import json
import pathlib
import re
import threading
from dataclasses import dataclass, field

import cerberus
import yaml

from . import errors
from .checks import CHINA, Context, make_checks
from .compiled import Unsupported, compile_schema
from .grids import Grid, ancestors, is_prefix
from .validator import validator_class

RECORD_TYPES = ("person", "house", "organization", "event")
SENSITIVITIES = ("public", "internal", "personal", "secret")
DEFAULT_PATH = pathlib.Path(__file__).resolve().parent.parent / "field_standards"


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Safe YAML that refuses a key twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


class StandardError(Exception):
    """A field standard or code table is broken; the message names file and field."""


@dataclass(frozen=True)
class CodeEntry:
    label: str
    since: int | None = None
    until: int | None = None


@dataclass(frozen=True)
class CodeTable:
    name: str
    standard: str
    title_zh: str
    title_en: str
    codes: dict
    checked_by: str | None = None  # a named check instead of an allowed list


@dataclass(frozen=True)
class FieldSpec:
    """One field of a standard: its Cerberus rules and its metadata."""

    name: str
    label_zh: str
    label_en: str
    rules: dict
    description: str = ""
    standard: str = ""
    code_table: str | None = None
    sensitivity: str = "internal"
    natural_key: bool = False

    @property
    def type(self) -> str:
        return self.rules["type"]

    @property
    def required(self) -> bool:
        return self.rules.get("required") is True

    @property
    def checks(self) -> list:
        """The names of its ``check_with`` rules."""
        return _as_list(self.rules.get("check_with"))


@dataclass(frozen=True)
class ValidationResult:
    valid: bool
    document: dict
    errors: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"valid": self.valid, "errors": [e.as_dict() for e in self.errors]}


def _read_yaml(path: pathlib.Path):
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise StandardError(f"{path}: cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise StandardError(f"{path}: must be a mapping")
    return data


def _label(data, where):
    label = data.get("label")
    if not (isinstance(label, dict) and isinstance(label.get("zh"), str)
            and isinstance(label.get("en"), str)):
        raise StandardError(f"{where}: needs label: {{zh: ..., en: ...}}")
    return label["zh"], label["en"]


def _load_code_table(path: pathlib.Path) -> CodeTable:
    data = _read_yaml(path)
    name = data.get("name")
    if name != path.stem:
        raise StandardError(f"{path}: name must be {path.stem!r}, not {name!r}")
    if not isinstance(data.get("standard"), str):
        raise StandardError(f"{path}: must name its standard (standard: ...)")
    title = data.get("title") or {}
    if not isinstance(title, dict) or not isinstance(data.get("codes"), dict):
        raise StandardError(f"{path}: title and codes must be mappings")
    codes = {}
    for code, entry in data["codes"].items():
        if not isinstance(code, str):
            raise StandardError(f"{path}: code {code!r} must be a quoted string")
        if isinstance(entry, str):
            entry = {"label": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("label"), str):
            raise StandardError(f"{path}: code {code!r} needs a label")
        years = entry.get("since"), entry.get("until")
        if any(year is not None and type(year) is not int for year in years):
            raise StandardError(f"{path}: code {code!r}: since and until must be years")
        codes[code] = CodeEntry(entry["label"], *years)
    if not codes:
        raise StandardError(f"{path}: has no codes")
    return CodeTable(name, data["standard"], title.get("zh", ""), title.get("en", ""), codes,
                     data.get("checked_by"))


class Standard:
    """The effective standard of one record type for a grid cell (or city-wide)."""

    def __init__(self, record_type, version, label, fields, checks, validator_cls, source):
        self.source = source  # (standards folder, record type, overlay prefixes)
        self.record_type = record_type
        self.version = version
        self.label_zh, self.label_en = label
        self.fields = fields  # name -> FieldSpec, in definition order
        keys = [f.name for f in fields.values() if f.natural_key]
        self.natural_key = keys[0] if keys else None
        self.schema = {name: spec.rules for name, spec in fields.items()}
        self.digest = hashlib.sha256(json.dumps(
            [record_type, version, {n: vars(f) for n, f in fields.items()}],
            sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()[:16]
        self._validator_class = validator_cls
        self._local = threading.local()
        try:
            self._compiled = compile_schema(self.schema, checks)
        except Unsupported:
            self._compiled = None  # a rule the compiler lacks: Cerberus does it all

    def __repr__(self):
        return f"<Standard {self.record_type} {self.version}>"

    def __reduce__(self):
        # compiled closures do not pickle: a worker process rebuilds the standard
        return _rebuild, self.source

    def cerberus_validator(self, context: Context | None = None) -> cerberus.Validator:
        """A new Cerberus validator for this standard: the definition of validity."""
        return self._validator_class(self.schema, context=context or Context())

    def check(self, record, context: Context):
        """``(normalised document, [(field, code)])`` — the raw verdict."""
        if self._compiled is not None:
            return self._compiled(record, context)
        validator = getattr(self._local, "validator", None)
        if validator is None:
            validator = self._local.validator = self.cerberus_validator()
        validator._config["context"] = context
        try:
            validator.validate(record)
        except Exception:  # Cerberus 1.3 raises on some shapes, e.g. a dict for a list
            return dict(record), [("", "invalid")]
        return validator.document, errors.from_cerberus(validator._errors)

    def validate(self, record, grid=None, now=None) -> ValidationResult:
        """Validate one record; ``grid`` is a ``Grid`` or a grid code."""
        return self._result(record, _context(grid, now))

    def validate_many(self, records, grid=None, now=None) -> list:
        context = _context(grid, now)
        return [self._result(record, context) for record in records]

    def _result(self, record, context):
        if not isinstance(record, dict):
            return ValidationResult(False, {}, [self.error("", "type")])
        document, pairs = self.check(record, context)
        if not pairs:
            return ValidationResult(True, document, [])
        return ValidationResult(False, document, [self.error(f, c) for f, c in pairs])

    def error(self, field_path: str, code: str) -> errors.FieldError:
        """A catalogue error on a field, its message naming the field's labels."""
        zh, en = self.labels(field_path)
        return errors.FieldError(field_path, code, errors.message(code, zh, en))

    def labels(self, field_path: str):
        if not field_path:
            return "记录", "Record"
        head, _, rest = field_path.partition(".")
        spec = self.fields.get(head)
        if spec is None:
            return field_path, field_path
        suffix = "." + rest if rest else ""
        return spec.label_zh + suffix, spec.label_en + suffix


def _rebuild(path, record_type, prefixes) -> "Standard":
    return load_standards(path)._effective(record_type, prefixes)


def _context(grid, now):
    if isinstance(grid, str):
        grid = Grid(grid)
    return Context(grid, now or datetime.datetime.now(CHINA))


class Standards:
    """Every standard and code table of a ``field_standards/`` folder."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self._resolved = {}  # (record type, overlay prefixes) -> Standard
        if not self.path.is_dir():
            raise StandardError(f"{self.path}: no such standards folder")
        self.code_tables = {}
        for table_path in sorted((self.path / "codes").glob("*.yaml")):
            table = _load_code_table(table_path)
            self.code_tables[table.name] = table
        for needed in ("gb_t_2260", "gb_32100_authority"):
            if needed not in self.code_tables:
                raise StandardError(f"{self.path / 'codes'}: code table {needed} is missing")
        self.checks = make_checks(self.code_tables)
        for table in self.code_tables.values():
            if table.checked_by is not None and table.checked_by not in self.checks:
                raise StandardError(f"{self.path / 'codes' / table.name}.yaml: checked_by "
                                    f"names no known check: {table.checked_by!r}")
        self.validator_class = validator_class(self.checks)
        self.base = {}
        for record_type in RECORD_TYPES:
            file = self.path / f"{record_type}.yaml"
            if not file.exists():
                raise StandardError(f"{file}: the {record_type} standard is missing")
            self.base[record_type] = self._load_record_type(file, record_type)
        self.overlays = {}  # prefix -> record_type -> overlay
        overlay_root = self.path / "overlays"
        for folder in sorted(p for p in overlay_root.glob("*") if p.is_dir()):
            if not is_prefix(folder.name):
                raise StandardError(f"{folder}: overlay folder must be a grid code prefix "
                                    "of 6, 9, 12 or 15 digits")
            for file in sorted(folder.glob("*.yaml")):
                if file.stem not in RECORD_TYPES:
                    raise StandardError(f"{file}: not a record type ({', '.join(RECORD_TYPES)})")
                overlay = self._load_overlay(file)
                self.overlays.setdefault(folder.name, {})[file.stem] = overlay
        for prefix in self.overlays:  # every chain of overlays must apply now, not later
            for record_type in RECORD_TYPES:
                self.effective(record_type, prefix)

    # --- loading ------------------------------------------------------------

    def _load_record_type(self, file, record_type):
        data = _read_yaml(file)
        unknown = set(data) - {"record_type", "version", "label", "description", "fields"}
        if unknown:
            raise StandardError(f"{file}: unknown keys {sorted(unknown)}")
        if data.get("record_type") != record_type:
            raise StandardError(f"{file}: record_type must be {record_type!r}")
        version = data.get("version")
        if not isinstance(version, (str, int)):
            raise StandardError(f"{file}: needs a version")
        label = _label(data, str(file))
        raw_fields = data.get("fields")
        if not isinstance(raw_fields, dict) or not raw_fields:
            raise StandardError(f"{file}: needs fields")
        fields = {name: self._field(file, name, raw) for name, raw in raw_fields.items()}
        keys = [name for name, spec in fields.items() if spec.natural_key]
        if len(keys) > 1:
            raise StandardError(f"{file}: more than one natural key: {keys}")
        for name in keys:
            if not fields[name].required:
                raise StandardError(f"{file}: field {name}: a natural key must be required")
        return {"version": str(version), "label": label, "fields": fields}

    def _field(self, file, name, raw) -> FieldSpec:
        where = f"{file}: field {name}"
        if not isinstance(name, str) or not name.isidentifier():
            raise StandardError(f"{where}: a field name must be a word like household_region")
        if not isinstance(raw, dict):
            raise StandardError(f"{where}: must be a mapping")
        unknown = set(raw) - {"label", "description", "standard", "code_table", "sensitivity",
                              "natural_key", "rules"}
        if unknown:
            raise StandardError(f"{where}: unknown keys {sorted(unknown)}")
        zh, en = _label(raw, where)
        rules = raw.get("rules")
        if not isinstance(rules, dict) or not isinstance(rules.get("type"), str):
            raise StandardError(f"{where}: needs rules with a single type")
        sensitivity = raw.get("sensitivity", "internal")
        if sensitivity not in SENSITIVITIES:
            raise StandardError(f"{where}: sensitivity must be one of {SENSITIVITIES}")
        code_table = raw.get("code_table")
        if code_table is not None and code_table not in self.code_tables:
            raise StandardError(f"{where}: unknown code table {code_table!r}")
        spec = FieldSpec(name, zh, en, copy.deepcopy(rules), raw.get("description", ""),
                         raw.get("standard", ""), code_table, sensitivity,
                         bool(raw.get("natural_key", False)))
        self._check_rules(where, spec)
        return spec

    def _load_overlay(self, file):
        data = _read_yaml(file)
        unknown = set(data) - {"version", "description", "fields"}
        if unknown:
            raise StandardError(f"{file}: unknown keys {sorted(unknown)}")
        version = data.get("version")
        if not isinstance(version, (str, int)):
            raise StandardError(f"{file}: needs a version")
        raw_fields = data.get("fields")
        if not isinstance(raw_fields, dict) or not raw_fields:
            raise StandardError(f"{file}: needs fields")
        return {"file": file, "version": str(version), "fields": raw_fields}

    def _check_rules(self, where, spec: FieldSpec):
        rules = _with_defaults(spec, self.code_tables)
        try:
            self.validator_class({spec.name: rules})
        except cerberus.SchemaError as exc:
            raise StandardError(f"{where}: invalid rules: {exc}") from None
        for pattern in _patterns(rules):
            if r"\d" in pattern:
                raise StandardError(f"{where}: write [0-9] in a regex, not \\d, which matches "
                                    "every Unicode digit (Arabic-Indic, full-width …)")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise StandardError(f"{where}: invalid regex {pattern!r}: {exc}") from None
        levels = list(_nested(rules))  # the rules hold for nested values as well
        if any("timestamp" in _as_list(level.get("check_with"))
               and level.get("coerce") != "timestamp" for level in levels):
            raise StandardError(f"{where}: a field checked with timestamp needs coerce: "
                                f"timestamp (timestamps are stored in one form, never as sent)")
        if any({"mobile", "phone"} & set(_as_list(level.get("check_with")))
               for level in levels) and spec.sensitivity not in ("personal", "secret"):
            raise StandardError(f"{where}: a field that may hold a mobile number is personal "
                                f"data: its sensitivity must be personal or secret")
        for limit in ("min", "max"):
            if limit in rules and rules["type"] in ("integer", "number", "float") and (
                    not isinstance(rules[limit], (int, float)) or isinstance(rules[limit], bool)):
                raise StandardError(f"{where}: {limit} must be a number")

    # --- resolving ------------------------------------------------------------

    def effective(self, record_type: str, grid_code: str | None = None) -> Standard:
        """The standard of ``record_type`` for a grid cell (or a prefix), overlays applied."""
        if record_type not in self.base:
            raise KeyError(f"unknown record type {record_type!r}")
        if grid_code is None:
            prefixes = ()
        elif not is_prefix(grid_code):
            raise ValueError(f"not a grid code or prefix: {grid_code!r}")
        else:
            prefixes = tuple(p for p in ancestors(grid_code)
                             if record_type in self.overlays.get(p, {}))
        return self._effective(record_type, prefixes)

    def all_fields(self, record_type: str) -> dict:
        """name -> FieldSpec of every field any grid has for ``record_type``: the
        city-wide fields, then those overlays add; each with its strictest
        sensitivity anywhere (what a city-wide table of the type must respect)."""
        found = dict(self.effective(record_type).fields)
        for prefix in sorted(self.overlays):
            for name, spec in self.effective(record_type, prefix).fields.items():
                if name not in found or (SENSITIVITIES.index(spec.sensitivity)
                                         > SENSITIVITIES.index(found[name].sensitivity)):
                    found[name] = spec if name not in found else dataclasses.replace(
                        found[name], sensitivity=spec.sensitivity)
        return found

    def _effective(self, record_type, prefixes) -> Standard:
        key = record_type, prefixes
        if key not in self._resolved:
            self._resolved[key] = self._resolve(record_type, prefixes)
        return self._resolved[key]

    def _resolve(self, record_type, prefixes) -> Standard:
        base = self.base[record_type]
        fields = dict(base["fields"])
        version = base["version"]
        for prefix in prefixes:
            overlay = self.overlays[prefix][record_type]
            for name, raw in overlay["fields"].items():
                where = f"{overlay['file']}: field {name}"
                fields[name] = (self._field(overlay["file"], name, raw) if name not in fields
                                else self._tighten(where, fields[name], raw))
            version += f"+{prefix}.{overlay['version']}"
        effective = {name: FieldSpec(**{**vars(spec),
                                        "rules": _with_defaults(spec, self.code_tables)})
                     for name, spec in fields.items()}
        return Standard(record_type, version, base["label"], effective, self.checks,
                        self.validator_class, (self.path, record_type, prefixes))

    def _tighten(self, where, spec: FieldSpec, raw) -> FieldSpec:
        """An overlay on an existing field: it may only make the rules stricter."""
        if not isinstance(raw, dict):
            raise StandardError(f"{where}: must be a mapping")
        unknown = set(raw) - {"description", "code_table", "sensitivity", "rules"}
        if unknown:
            raise StandardError(f"{where}: an overlay may not change {sorted(unknown)}")
        old, new = spec.rules, raw.get("rules") or {}
        if not isinstance(new, dict):
            raise StandardError(f"{where}: rules must be a mapping")
        others = set(new) - _TIGHTENING_RULES
        if others:
            raise StandardError(f"{where}: an overlay may not set {sorted(others)} on an "
                                "existing field, only " + ", ".join(sorted(_TIGHTENING_RULES)))
        merged = {**old, **new}
        effective_old = _with_defaults(spec, self.code_tables)
        if "check_with" in new:  # an overlay's checks come on top of the city's
            merged["check_with"] = old.get("check_with")
            for name in _as_list(new["check_with"]):
                merged["check_with"] = _add_check(merged["check_with"], name)
        code_table = raw.get("code_table", spec.code_table)
        if code_table is not None and code_table not in self.code_tables:
            raise StandardError(f"{where}: unknown code table {code_table!r}")
        sensitivity = raw.get("sensitivity", spec.sensitivity)
        if sensitivity not in SENSITIVITIES:
            raise StandardError(f"{where}: sensitivity must be one of {SENSITIVITIES}")
        tightened = FieldSpec(**{**vars(spec), "rules": merged, "code_table": code_table,
                                 "sensitivity": sensitivity,
                                 "description": raw.get("description", spec.description)})
        self._check_rules(where, tightened)  # well-formed first, then compared
        loosened = [rule for rule, ok in (
            ("type", merged["type"] == old["type"]),
            ("coerce", merged.get("coerce") == old.get("coerce")),
            ("regex", "regex" not in old or merged.get("regex") == old["regex"]),
            ("required", old.get("required") is not True or merged.get("required") is True),
            ("nullable", old.get("nullable", False) or not merged.get("nullable", False)),
            ("empty", effective_old.get("empty", True) or not merged.get("empty", False)),
            ("min", "min" not in old or merged["min"] >= old["min"]),
            ("minlength", "minlength" not in old or merged["minlength"] >= old["minlength"]),
            ("max", "max" not in old or merged["max"] <= old["max"]),
            ("maxlength", "maxlength" not in old or merged["maxlength"] <= old["maxlength"]),
            ("allowed", "allowed" not in new or "allowed" not in effective_old
             or set(new["allowed"]) <= set(effective_old["allowed"])),
        ) if not ok]
        if code_table != spec.code_table and spec.code_table and not (
                set(self.code_tables[code_table].codes)
                <= set(self.code_tables[spec.code_table].codes)):
            loosened.append("code_table")
        if SENSITIVITIES.index(sensitivity) < SENSITIVITIES.index(spec.sensitivity):
            loosened.append("sensitivity")
        if loosened:
            raise StandardError(f"{where}: an overlay may only tighten a rule; "
                                f"it loosens {', '.join(loosened)}")
        return tightened


# What an overlay may set on an existing field (type, coerce and regex only unchanged).
_TIGHTENING_RULES = {"type", "coerce", "regex", "required", "nullable", "empty", "min", "max",
                     "minlength", "maxlength", "allowed", "check_with"}


def _nested(rules):
    """A field's rules and every nested rule set (a dict's fields, a list's items)."""
    yield rules
    schema = rules.get("schema")
    if isinstance(schema, dict):
        nested = schema.values() if rules.get("type") == "dict" else [schema]
        for sub in nested:
            if isinstance(sub, dict):
                yield from _nested(sub)


def _patterns(rules):
    """Every regex of a field's rules, nested ones included."""
    for level in _nested(rules):
        if isinstance(level.get("regex"), str):
            yield level["regex"]


def _as_list(value):
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def _with_defaults(spec: FieldSpec, code_tables) -> dict:
    """The rules as Cerberus runs them: code table codes, non-empty strings of
    plain text, finite numbers (NaN passes any min and max)."""
    rules = _rule_defaults(spec.rules)
    table = code_tables[spec.code_table] if spec.code_table else None
    if table and table.checked_by:
        rules["check_with"] = _add_check(rules.get("check_with"), table.checked_by)
    elif table and "allowed" not in rules:
        rules["allowed"] = list(table.codes)
    return rules


def _rule_defaults(rules: dict) -> dict:
    rules = dict(rules)
    if rules.get("type") == "string":
        rules.setdefault("empty", False)
        if rules.get("coerce") in (None, "text"):  # free text: codes have their own rules
            rules["check_with"] = _add_check(rules.get("check_with"), "plain_text")
    if rules.get("type") in ("number", "float"):
        rules["check_with"] = _add_check(rules.get("check_with"), "finite")
    if rules.get("type") == "dict" and isinstance(rules.get("schema"), dict):
        rules["schema"] = {name: _rule_defaults(sub) if isinstance(sub, dict) else sub
                           for name, sub in rules["schema"].items()}
    return rules


def _add_check(check_with, name):
    """A ``check_with`` value with ``name`` appended unless it is there already."""
    checks = _as_list(check_with)
    if name not in checks:
        checks.append(name)
    return checks[0] if len(checks) == 1 else checks


def load_standards(path=None) -> Standards:
    """Load (once per folder) and check a ``field_standards/`` folder."""
    return _load_standards(pathlib.Path(path or DEFAULT_PATH).resolve())


@functools.lru_cache(maxsize=8)
def _load_standards(path: pathlib.Path) -> Standards:
    return Standards(path)
