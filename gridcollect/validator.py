"""The Cerberus validator: the definition of validity.

``validator_class(checks)`` builds a ``cerberus.Validator`` subclass whose
``check_with`` and ``coerce`` rules are the named rules of ``gridcollect.checks``.
Custom errors carry the catalogue code as their only info, so
``errors.from_cerberus`` reads every error back as ``(field, code)``.
The compiled fast path (``gridcollect.compiled``) must agree with this class on
every input; ``tests/test_differential.py`` proves it.
"""
from __future__ import annotations

import cerberus
from cerberus import TypeDefinition

from .checks import COERCERS, Context

# JSON true is not a floor number: unlike Cerberus' default, integer excludes bool.
TYPES = {**cerberus.Validator.types_mapping,
         "integer": TypeDefinition("integer", (int,), (bool,))}


def _check_method(check):
    def method(self, field, value):
        context = self._config.get("context") or Context()
        for code in check(value, self.root_document, context):
            self._error(field, code)

    return method


def _coerce_method(coercer):
    def method(self, value):
        return coercer(value)

    return method


def validator_class(checks: dict) -> type:
    """A Validator subclass with the given named checks (private registries)."""
    namespace = {f"_check_with_{name}": _check_method(check) for name, check in checks.items()}
    namespace["types_mapping"] = TYPES
    namespace.update(
        {f"_normalize_coerce_{name}": _coerce_method(c) for name, c in COERCERS.items()})
    return type("GridValidator", (cerberus.Validator,), namespace)
