"""XForms from XLSForms (pyxform), made once per standard and grid and kept: the form
list of a phone's sync asks for them again and again."""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from . import xlsform


@dataclass(frozen=True)
class XForm:
    xml: bytes
    md5: str
    version: str
    title: str
    has_lookup: bool  # a manifest offers records.csv for the base-version look-up


_cache: dict = {}
_lock = threading.Lock()
MAX_CACHED = 5000


def convert(workbook: dict) -> bytes:
    from pyxform.xls2xform import convert as pyxform_convert
    return pyxform_convert(xlsform=workbook, form_name="data").xform.encode("utf-8")


def get(standards, record_type: str, grid, lookup: bool = True) -> XForm:
    """The XForm of ``record_type`` for ``grid`` (a ``workflow.GridCache`` Grid)."""
    standard = standards.effective(record_type, grid.code)
    key = (id(standards), record_type, grid.code, standard.digest, grid.name,
           None if grid.geometry is None else grid.geometry.wkb, lookup)
    found = _cache.get(key)
    if found is None:
        workbook = xlsform.build(standards, record_type, grid, lookup=lookup)
        xml = convert(workbook)
        found = XForm(xml, hashlib.md5(xml).hexdigest(), xlsform.form_version(standard),
                      workbook["settings"][0]["form_title"],
                      lookup and standard.natural_key is not None)
        with _lock:
            if len(_cache) >= MAX_CACHED:
                _cache.clear()
            _cache[key] = found
    return found
