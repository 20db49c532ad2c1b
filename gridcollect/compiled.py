"""The compiled fast path: a standard turned into plain Python closures, once.

Cerberus 1.3 re-validates and re-hashes the schema on every document, which
costs most of its time. Here each field's rules become a list of small steps,
built once per standard version, that follow Cerberus' own semantics exactly:
the same normalisation order (coerce, then nested containers), the same rule
order (nullable, type, empty first, then the definition's order), the same
rules dropped after a failure, the same type definitions. ``compile_schema``
refuses (``Unsupported``) any rule it does not implement, and the caller then
uses Cerberus itself. ``tests/test_differential.py`` checks verdicts, error
codes and normalised documents against Cerberus on generated records.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sized

import cerberus

from .checks import COERCERS
from .validator import TYPES

SUPPORTED = {"type", "required", "nullable", "empty", "allowed", "minlength", "maxlength",
             "min", "max", "regex", "check_with", "schema", "coerce", "meta"}
_NOT_VALIDATED = set(cerberus.Validator.normalization_rules) | {
    "allow_unknown", "require_all", "meta", "required"}
_PRIORITY = ("nullable", "readonly", "type", "empty")
ALL = object()  # "drop every remaining rule"
_DROP_ON_NONE = frozenset({"allof", "allowed", "anyof", "empty", "forbidden", "items",
                           "keysrules", "min", "max", "minlength", "maxlength", "noneof",
                           "oneof", "regex", "schema", "type", "valuesrules"})
_DROP_ON_EMPTY = frozenset({"allowed", "forbidden", "items", "minlength", "maxlength",
                            "regex", "check_with"})


class Unsupported(Exception):
    """The schema uses a rule the compiler does not implement."""


def compile_schema(schema: Mapping, checks: Mapping):
    """``validate(document, context) -> (normalised document, [(field, code)])``."""
    mapping = _Mapping(schema, checks)

    def validate(document, context):
        document = dict(document)
        errors = []
        mapping.normalize(document, "", errors)
        mapping.validate(document, document, context, "", errors)
        return document, errors

    return validate


class _Mapping:
    """A mapping schema: its fields' coercers and rule steps, and its required set."""

    def __init__(self, schema, checks):
        self.fields = {}
        self.coercers = {}
        self.required = []
        for name, rules in schema.items():
            unknown = set(rules) - SUPPORTED
            if unknown:
                raise Unsupported(f"{name}: {sorted(unknown)}")
            if rules.get("required") is True:
                self.required.append(name)
            if "coerce" in rules:
                self.coercers[name] = _coercer(rules["coerce"])
            self.fields[name] = _field_runner(rules, checks)

    def normalize(self, document, prefix, errors):
        for name in document:
            coercer = self.coercers.get(name)
            if coercer is not None:
                try:
                    document[name] = coercer(document[name])
                except Exception:
                    errors.append((prefix + str(name), "coercion"))

    def validate(self, document, root, context, prefix, errors):
        fields = self.fields
        for name, value in document.items():
            run = fields.get(name)
            if run is None:
                errors.append((prefix + str(name), "unknown_field"))
            else:
                run(value, root, context, prefix + str(name), errors)
        for name in self.required:
            if name not in document:
                errors.append((prefix + str(name), "required"))


def _field_runner(rules, checks):
    """One closure per field. Only nullable, type and empty can drop later rules,
    and they come first: a value that is not None, of its type and not empty runs
    the remaining rules straight; other values take the queue with its drops."""
    steps = _field_steps(rules, checks)
    plain = [step for rule, step in steps if rule not in _PRIORITY]
    matches = _type_matcher(rules["type"]) if "type" in rules else None
    check_empty = "empty" in rules

    def run(value, root, context, path, errors):
        if (value is None or matches is None
                or (check_empty and isinstance(value, Sized) and len(value) == 0)):
            _run(steps, value, root, context, path, errors)
        elif not matches(value):
            errors.append((path, "type"))
        else:
            for step in plain:
                step(value, root, context, path, errors)
    return run


def _type_matcher(data_type):
    names = (data_type,) if isinstance(data_type, str) else tuple(data_type)
    definitions = [(TYPES[n].included_types, TYPES[n].excluded_types) for n in names]
    excluded_anywhere = tuple(t for _, excluded in definitions for t in excluded)
    # plain types matched by identity first: the common case costs one set lookup
    exact = {t for included, _ in definitions for t in included
             if t in (str, list, dict, int) and not issubclass(t, excluded_anywhere)}

    def matches(value):
        if type(value) in exact:
            return True
        for included, excluded in definitions:
            if isinstance(value, included) and not isinstance(value, excluded):
                return True
        return False
    return matches


def _run(steps, value, root, context, path, errors):
    """Cerberus' rule queue for one value: a failed rule may drop later ones."""
    dropped = None
    for rule, step in steps:
        if dropped is not None and rule in dropped:
            continue
        drop = step(value, root, context, path, errors)
        if drop is not None:
            if drop is ALL:
                return
            dropped = drop if dropped is None else dropped | drop


def _coercer(spec):
    if isinstance(spec, str):
        return COERCERS[spec]
    chain = [COERCERS[name] for name in spec]

    def coerce(value):
        for coercer in chain:
            value = coercer(value)
        return value

    return coerce


def _field_steps(rules, checks):
    queue = [r for r in _PRIORITY if r in rules or r == "nullable"]
    queue += [r for r in rules if r not in queue and r not in _NOT_VALIDATED]
    return [(rule, _STEP_BUILDERS[rule](rules.get(rule), rules, checks)) for rule in queue]


def _nullable(nullable, rules, checks):
    def step(value, root, context, path, errors):
        if value is None:
            if not nullable:
                errors.append((path, "null"))
            return _DROP_ON_NONE
    return step


def _type(data_type, rules, checks):
    matches = _type_matcher(data_type)

    def step(value, root, context, path, errors):
        if not matches(value):
            errors.append((path, "type"))
            return ALL
    return step


def _empty(empty, rules, checks):
    def step(value, root, context, path, errors):
        if isinstance(value, Sized) and len(value) == 0:
            if not empty:
                errors.append((path, "empty"))
            return _DROP_ON_EMPTY
    return step


def _allowed(allowed, rules, checks):
    allowed_list = list(allowed)
    try:
        allowed_set = frozenset(allowed_list)
    except TypeError:
        allowed_set = None

    def contains(item):
        if allowed_set is not None:
            try:
                return item in allowed_set
            except TypeError:
                pass
        return item in allowed_list

    def step(value, root, context, path, errors):
        if type(value) is not str and isinstance(value, Iterable):
            if not all(contains(item) for item in value):
                errors.append((path, "not_in_code_table"))
        elif not contains(value):
            errors.append((path, "not_in_code_table"))
    return step


def _minlength(limit, rules, checks):
    def step(value, root, context, path, errors):
        if (type(value) is str or isinstance(value, Iterable)) and len(value) < limit:
            errors.append((path, "too_short"))
    return step


def _maxlength(limit, rules, checks):
    def step(value, root, context, path, errors):
        if (type(value) is str or isinstance(value, Iterable)) and len(value) > limit:
            errors.append((path, "too_long"))
    return step


def _min(limit, rules, checks):
    def step(value, root, context, path, errors):
        try:
            if value < limit:
                errors.append((path, "too_small"))
        except TypeError:
            pass
    return step


def _max(limit, rules, checks):
    def step(value, root, context, path, errors):
        try:
            if value > limit:
                errors.append((path, "too_large"))
        except TypeError:
            pass
    return step


def _regex(pattern, rules, checks):
    matcher = re.compile(pattern if pattern.endswith("$") else pattern + "$").match

    def step(value, root, context, path, errors):
        if isinstance(value, str) and not matcher(value):
            errors.append((path, "format"))
    return step


def _check_with(names, rules, checks):
    if not isinstance(names, str) and not all(isinstance(n, str) for n in names):
        raise Unsupported("check_with: callables")
    functions = [checks[n] for n in ([names] if isinstance(names, str) else names)]

    def step(value, root, context, path, errors):
        for check in functions:
            for code in check(value, root, context):
                errors.append((path, code))
    return step


def _schema(schema, rules, checks):
    kind = rules.get("type")
    if schema is None or kind not in ("dict", "list"):
        raise Unsupported("schema: needs type dict or list")
    if kind == "dict":
        if any("coerce" in sub for sub in schema.values()):
            raise Unsupported("schema: nested coerce")
        child = _Mapping(schema, checks)

        def step(value, root, context, path, errors):
            # the type rule ran first, so value is a mapping
            child.validate(value, root, context, path + ".", errors)
        return step

    if set(schema) - SUPPORTED or "coerce" in schema:
        raise Unsupported(f"schema: items {sorted(schema)}")
    items = _field_runner(schema, checks)

    def step(value, root, context, path, errors):
        for index, item in enumerate(value):
            items(item, root, context, f"{path}.{index}", errors)
    return step


_STEP_BUILDERS = {
    "nullable": lambda nullable, rules, checks: _nullable(bool(nullable), rules, checks),
    "type": _type,
    "empty": _empty,
    "allowed": _allowed,
    "minlength": _minlength,
    "maxlength": _maxlength,
    "min": _min,
    "max": _max,
    "regex": _regex,
    "check_with": _check_with,
    "schema": _schema,
}
