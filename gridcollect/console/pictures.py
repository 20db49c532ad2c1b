"""Maps and charts as SVG shapes computed on the server: no tile server, no chart
library, nothing for the browser to run. The templates draw what these return
(numbers and colours only; every label goes through Jinja's escaping)."""
from __future__ import annotations

import datetime
import math

import numpy
import shapely
from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 640, 440, 8

# sequential colours, light to dark (ColorBrewer "Oranges"), and the grey of "no data"
SCALE = ("#fee6ce", "#fdae6b", "#fd8d3c", "#e6550d", "#a63603")
EMPTY = "#e8efe6"
# per state, the same colour in every chart and badge
STATE_COLOURS = {"pending": "#f0ad4e", "confirmed": "#3c8d40", "rejected": "#b52a2a",
                 "returned": "#7b5ea7", "conflict": "#d9534f", "awaiting_move": "#5b8fc7"}
BACKLOG_BINS = (1, 6, 21, 51)  # pending counts: 1-5, 6-20, 21-50, 51-..
AGE_BINS = (24, 72, 168, 336)  # hours waited by the oldest pending: <1 d, 1-3 d, 3-7 d...


def _bin(value, bins) -> int:
    return sum(value >= edge for edge in bins)


class Projection:
    """lon/lat to SVG units: equirectangular, shrunk by cos(latitude) so a square
    grid cell looks square, fitted into WIDTH × HEIGHT."""

    def __init__(self, bounds, width=WIDTH, height=HEIGHT):
        minx, miny, maxx, maxy = bounds
        self.kx = math.cos(math.radians((miny + maxy) / 2))
        span_x = max((maxx - minx) * self.kx, 1e-9)
        span_y = max(maxy - miny, 1e-9)
        self.scale = min((width - 2 * PAD) / span_x, (height - 2 * PAD) / span_y)
        self.minx, self.maxy = minx, maxy
        self.width = round(span_x * self.scale + 2 * PAD)
        self.height = round(span_y * self.scale + 2 * PAD)

    def point(self, lon, lat) -> tuple:
        return (round(PAD + (lon - self.minx) * self.kx * self.scale, 1),
                round(PAD + (self.maxy - lat) * self.scale, 1))

    def paths(self, geometries) -> list:
        """The SVG path of each (Multi)Polygon, all of them projected at once: a
        district's thousand cells cost one pass over their coordinates."""
        parts, of_geometry = shapely.get_parts(geometries, return_index=True)
        rings, of_part = shapely.get_rings(parts, return_index=True)
        coords, of_ring = shapely.get_coordinates(rings, return_index=True)
        xs = numpy.round(PAD + (coords[:, 0] - self.minx) * self.kx * self.scale, 1)
        ys = numpy.round(PAD + (self.maxy - coords[:, 1]) * self.scale, 1)
        points = [f"{x:g},{y:g}" for x, y in zip(xs.tolist(), ys.tolist())]
        ends = numpy.flatnonzero(numpy.diff(of_ring)).tolist() + [len(points) - 1]
        out = [""] * len(geometries)
        start, owner = 0, of_geometry[of_part].tolist()
        for ring, end in enumerate(ends):  # a ring's last point repeats its first
            out[owner[ring]] += "M" + "L".join(points[start:end]) + "Z"
            start = end + 1
        return out


def grid_map(grids: list, figures: dict, colour_by: str, now: datetime.datetime,
             marker=None) -> dict | None:
    """The shapes of a map of ``grids`` (rows with code, name, geometry GeoJSON):
    each coloured by its backlog or by how long its oldest pending submission has
    waited (``figures``: code -> monitor figures). ``marker``: (lon, lat) to pin."""
    grids = [g for g in grids if g["geometry"]]
    geometries = shapely.from_geojson([g["geometry"] for g in grids]) if grids else []
    keep = [i for i, geom in enumerate(geometries) if not geom.is_empty]
    if not keep:
        return None
    grids, geometries = [grids[i] for i in keep], geometries[keep]
    bounds = shapely.total_bounds(list(geometries)
                                  + ([shapely.Point(marker)] if marker else []))
    projection = Projection(bounds)
    if len(grids) > 50:  # a district's cells: fewer points, the same picture
        tolerance = max(bounds[2] - bounds[0], bounds[3] - bounds[1]) / 2000
        geometries = shapely.simplify(geometries, tolerance, preserve_topology=True)
    out = []
    for grid, path in zip(grids, projection.paths(geometries)):
        value, fill = _colour(figures.get(grid["code"]), colour_by, now)
        out.append({"code": grid["code"], "name": grid["name"], "d": path, "fill": fill,
                    "value": value})
    pin = projection.point(*marker) if marker else None
    return {"width": projection.width, "height": projection.height, "shapes": out,
            "pin": pin}


def cells_svg(shapes: list, link: str | None = None) -> Markup:
    """The ``<path>`` of every cell, each titled with its code and name (escaped) and,
    with ``link``, a link to ``link + code``: built here, not in a template loop, as a
    district has a thousand of them."""
    parts = []
    for shape in shapes:
        value = "" if shape["value"] is None else f" · {shape['value']}"
        path = (f'<path d="{shape["d"]}" fill="{shape["fill"]}" class="cell"><title>'
                f'{shape["code"]} {escape(shape["name"])}{value}</title></path>')
        parts.append(f'<a href="{escape(link)}{shape["code"]}">{path}</a>' if link else path)
    return Markup("".join(parts))


def _colour(figure, colour_by, now) -> tuple:
    if figure is None:
        return None, EMPTY
    if colour_by == "oldest":
        oldest = figure.get("oldest_pending")
        if not oldest:
            return None, EMPTY
        hours = (now - datetime.datetime.fromisoformat(oldest)).total_seconds() / 3600
        return round(hours, 1), SCALE[_bin(hours, AGE_BINS)]
    pending = figure.get("pending") or 0
    return pending, SCALE[_bin(pending, BACKLOG_BINS)] if pending else EMPTY


def legend(colour_by: str) -> list:
    """(colour, lower bound, upper bound or None) per class of the map's colours (the
    grey of "nothing waiting" aside)."""
    if colour_by == "oldest":
        colours, lows = SCALE, (0,) + AGE_BINS
    else:  # a pending count of 0 is grey: the classes start at 1
        colours, lows = SCALE[1:], BACKLOG_BINS
    return [(colour, low, lows[i + 1] if i + 1 < len(lows) else None)
            for i, (colour, low) in enumerate(zip(colours, lows))]


def day_bars(days: list, states=tuple(STATE_COLOURS), width=WIDTH, height=180) -> dict:
    """Stacked bars, one per day: ``days`` is ``[(day, {state: count})]``."""
    top = max([sum(c.values()) for _, c in days] + [1])
    step = (width - 2 * PAD) / max(len(days), 1)
    bars = []
    for i, (day, counts) in enumerate(days):
        y = height - 20
        for state in states:
            n = counts.get(state, 0)
            if not n:
                continue
            h = (height - 30) * n / top
            y -= h
            bars.append({"x": round(PAD + i * step + 1, 1), "y": round(y, 1),
                         "w": round(max(step - 2, 1), 1), "h": round(h, 1),
                         "fill": STATE_COLOURS[state], "day": day, "state": state, "n": n})
    shown = [i for i in range(len(days)) if i % 7 == 0]
    if days and len(days) - 1 - (shown[-1] if shown else -7) >= 4:
        shown.append(len(days) - 1)  # today, unless a tick is already close to it
    ticks = [{"x": round(PAD + i * step + step / 2, 1), "label": days[i][0][5:]}
             for i in shown]
    return {"width": width, "height": height, "bars": bars, "ticks": ticks, "top": top,
            "baseline": height - 20}


def share_bars(items: list, key="count") -> list:
    """Each item with ``width``: its share of the largest, in percent."""
    top = max([item[key] for item in items] + [1])
    return [{**item, "width": round(100 * item[key] / top, 1)} for item in items]


def point_of(location) -> tuple | None:
    """(lon, lat) of a submission's ``location`` field, if it has a usable one."""
    if isinstance(location, dict):
        lon, lat = location.get("lon"), location.get("lat")
        if isinstance(lon, (int, float)) and isinstance(lat, (int, float)):
            return float(lon), float(lat)
    return None
