"""Grid codes (15 digits, 6+3+3+3), their hierarchy, and grid geometry."""
from __future__ import annotations

import re
from dataclasses import dataclass

import shapely
from shapely.geometry import shape

GRID_CODE = re.compile(r"\d{15}\Z")
PREFIX = re.compile(r"(\d{6}|\d{9}|\d{12}|\d{15})\Z")
LEVELS = {6: "district", 9: "street", 12: "community", 15: "grid"}


def is_grid_code(code) -> bool:
    return isinstance(code, str) and GRID_CODE.match(code) is not None


def is_prefix(code) -> bool:
    """A district (6), street (9), community (12) or grid (15) prefix."""
    return isinstance(code, str) and PREFIX.match(code) is not None


def ancestors(grid_code: str) -> list:
    """The prefixes naming a grid cell, widest first: district … grid."""
    return [grid_code[:n] for n in (6, 9, 12, 15) if n <= len(grid_code)]


@dataclass(frozen=True)
class Grid:
    """A grid cell: its code, name and (optional) WGS 84 lon/lat geometry."""

    code: str
    name: str = ""
    geometry: object = None

    def __post_init__(self):
        if not is_grid_code(self.code):
            raise ValueError(f"grid code must be 15 digits: {self.code!r}")
        if self.geometry is not None:
            shapely.prepare(self.geometry)

    @classmethod
    def from_feature(cls, feature: dict) -> "Grid":
        """A GeoJSON Feature with properties ``code`` and ``name``."""
        properties = feature.get("properties") or {}
        return cls(str(properties.get("code", "")), str(properties.get("name", "")),
                   shape(feature["geometry"]))

    def contains(self, lon: float, lat: float) -> bool:
        """Whether the point lies inside the cell or on its boundary."""
        return bool(shapely.intersects_xy(self.geometry, lon, lat))
