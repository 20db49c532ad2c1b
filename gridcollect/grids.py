"""Grid codes (15 digits, 6+3+3+3), their hierarchy, and grid geometry."""
from __future__ import annotations

import re
from dataclasses import dataclass

import shapely
from shapely.geometry import shape

from .checks import check_plain_text

GRID_CODE = re.compile(r"[0-9]{15}\Z")
PREFIX = re.compile(r"([0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15})\Z")


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


AREA_PROPERTIES = (("district", 6), ("street", 9), ("community", 12))  # optional names
MAX_REPORTED = 100  # problems listed from one file


class GridFileError(ValueError):
    """A GeoJSON grid file that cannot be used; the message names the feature."""


def load_geojson(path) -> dict:
    """The grid cells of a GeoJSON FeatureCollection, by code (see read_geojson)."""
    return read_geojson(path)[0]


def read_geojson(path, name=None) -> tuple:
    """``(grids by code, area names by code)`` of a GeoJSON FeatureCollection.

    Each Feature needs ``properties.code`` (15 digits), ``properties.name`` and
    a valid Polygon or MultiPolygon in WGS 84 lon/lat; optional ``district``,
    ``street`` and ``community`` name the areas the grid lies in (the same name
    wherever an area appears). Every bad feature is reported (up to MAX_REPORTED),
    one per line of the GridFileError, each starting with ``name`` (the path by
    default: an upload is named by the file the user chose).
    """
    import json

    name = name or path
    try:
        with open(path, encoding="utf-8-sig") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GridFileError(f"{name}: cannot be read as GeoJSON: {exc}") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise GridFileError(f"{name}: must be a GeoJSON FeatureCollection")
    features = data.get("features")
    if not isinstance(features, list):
        raise GridFileError(f"{name}: features must be a list")
    grids, names, named_in, problems = {}, {}, {}, []
    for index, feature in enumerate(features, start=1):
        try:
            grid, areas = _feature(feature)
        except GridFileError as exc:
            problems.append(f"{name}: feature {index}{exc}")
            continue
        if grid.code in grids:
            problems.append(f"{name}: feature {index}: grid {grid.code} appears twice "
                            f"(first in feature {named_in[grid.code]})")
            continue
        grids[grid.code], named_in[grid.code] = grid, index
        for code, name in areas.items():
            if names.setdefault(code, (name, index))[0] != name:
                problems.append(f"{name}: feature {index} ({grid.code}): area {code} is "
                                f"named {name!r}, but {names[code][0]!r} in feature "
                                f"{names[code][1]}")
    if problems:
        more = len(problems) - MAX_REPORTED
        raise GridFileError("\n".join(problems[:MAX_REPORTED]
                                      + ([f"... and {more} more"] if more > 0 else [])))
    return grids, {code: name for code, (name, _) in names.items()}


def _feature(feature) -> tuple:
    """``(Grid, {area code: name})`` of one Feature; GridFileError(": what is wrong")."""
    if not isinstance(feature, dict) or not isinstance(feature.get("properties"), dict):
        raise GridFileError(": must be a Feature with properties")
    properties = feature["properties"]
    code = properties.get("code")
    if not is_grid_code(code):
        raise GridFileError(f": properties.code must be a 15-digit grid code, not {code!r}")
    name = properties.get("name")
    if not isinstance(name, str) or not name.strip():
        raise GridFileError(f" ({code}): properties.name must be the grid's name")
    if check_plain_text(name, None, None):
        raise GridFileError(f" ({code}): properties.name contains control or invisible "
                            f"characters (a bidi override would make it read otherwise)")
    areas = {}
    for key, length in AREA_PROPERTIES:
        value = properties.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip() or check_plain_text(
                value, None, None):
            raise GridFileError(f" ({code}): properties.{key}, if given, must be the name "
                                f"of {key} {code[:length]}, without control or invisible "
                                f"characters")
        areas[code[:length]] = value.strip()
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon",
                                                                        "MultiPolygon"):
        raise GridFileError(f" ({code}): geometry must be a Polygon or MultiPolygon")
    try:
        grid = Grid.from_feature(feature)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise GridFileError(f" ({code}): unreadable geometry: {exc}") from None
    if not grid.geometry.is_valid:
        raise GridFileError(f" ({code}): invalid geometry: "
                            f"{shapely.is_valid_reason(grid.geometry)}")
    minx, miny, maxx, maxy = grid.geometry.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise GridFileError(f" ({code}): coordinates are not WGS 84 lon/lat")
    return grid, areas
