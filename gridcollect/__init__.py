"""gridcollect: field standards and validation for grid-based data collection.

    from gridcollect import load_standards
    person = load_standards().effective("person", "420502001002003")
    result = person.validate({"id_number": "11010519491231002x", ...})
    result.valid, result.document, [e.as_dict() for e in result.errors]
"""
from .checks import Context
from .errors import CATALOGUE, FieldError
from .filecheck import RowResult, check_files
from .grids import Grid, ancestors, is_grid_code
from .standards import (RECORD_TYPES, CodeTable, FieldSpec, Standard, StandardError, Standards,
                        ValidationResult, load_standards)

__all__ = [
    "CATALOGUE",
    "CodeTable",
    "Context",
    "FieldError",
    "FieldSpec",
    "Grid",
    "RECORD_TYPES",
    "RowResult",
    "Standard",
    "StandardError",
    "Standards",
    "ValidationResult",
    "ancestors",
    "check_files",
    "is_grid_code",
    "load_standards",
]
