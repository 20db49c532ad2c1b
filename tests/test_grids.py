"""Grid codes, hierarchy and GeoJSON grid files."""
import json
import subprocess
import sys

import pytest

from gridcollect.grids import Grid, GridFileError, ancestors, is_grid_code, is_prefix, load_geojson

SQUARE = [[[111.28, 30.69], [111.30, 30.69], [111.30, 30.71], [111.28, 30.71], [111.28, 30.69]]]


def feature(code="420502001002003", geometry=None, name="第三网格"):
    return {"type": "Feature", "properties": {"code": code, "name": name},
            "geometry": geometry or {"type": "Polygon", "coordinates": SQUARE}}


def write(tmp_path, *features, kind="FeatureCollection"):
    path = tmp_path / "grids.geojson"
    path.write_text(json.dumps({"type": kind, "features": list(features)}), encoding="utf-8")
    return path


def test_codes_and_ancestors():
    assert ancestors("420502001002003") == ["420502", "420502001", "420502001002",
                                            "420502001002003"]
    assert is_grid_code("420502001002003") and not is_grid_code("42050200100200")
    assert not is_grid_code("４２０５０２００１００２００３")  # full-width: not a code
    assert all(is_prefix(p) for p in ancestors("420502001002003"))
    assert not is_prefix("4205020") and not is_prefix("../420502")
    with pytest.raises(ValueError):
        Grid("420502001002")


def test_load_geojson_and_contains(tmp_path):
    grids = load_geojson(write(tmp_path, feature(), feature("420502001002004")))
    grid = grids["420502001002003"]
    assert grid.name == "第三网格"
    assert grid.contains(111.29, 30.70) and grid.contains(111.28, 30.70)  # boundary counts
    assert not grid.contains(111.29, 30.72) and not grid.contains(30.70, 111.29)


@pytest.mark.parametrize("features,kind,message", [
    ([feature("42050200100200")], "FeatureCollection", "15-digit grid code"),
    ([feature(geometry={"type": "Point", "coordinates": [111.29, 30.7]})], "FeatureCollection",
     "Polygon or MultiPolygon"),
    ([feature(geometry={"type": "Polygon", "coordinates": [[[111.28, 30.69], [111.30, 30.71],
                                                             [111.30, 30.69], [111.28, 30.71],
                                                             [111.28, 30.69]]]})],
     "FeatureCollection", "invalid geometry"),
    ([feature(geometry={"type": "Polygon", "coordinates": [[[500000, 3400000], [500100, 3400000],
                                                             [500100, 3400100], [500000, 3400000]]]})],
     "FeatureCollection", "WGS 84"),
    ([feature(), feature()], "FeatureCollection", "appears twice"),
    ([feature()], "Feature", "FeatureCollection"),
    (["x"], "FeatureCollection", "feature 1: must be a Feature"),
    ([feature(name="")], "FeatureCollection", "properties.name"),
])
def test_bad_grid_files_are_refused_naming_the_feature(tmp_path, features, kind, message):
    with pytest.raises(GridFileError, match=message):
        load_geojson(write(tmp_path, *features, kind=kind))


def test_validate_with_grids_checks_locations(tmp_path):
    grids = write(tmp_path, feature())
    events = tmp_path / "events.csv"
    events.write_text("event_type,description,occurred_at,location.lat,location.lon\n"
                      "02,楼道堆放杂物存在消防隐患,2026-11-20T09:30:00+08:00,30.70,111.29\n"
                      "03,垃圾桶满溢无人清理,2026-11-20 10:00,30.75,111.29\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "gridcollect", "validate", str(events), "--type",
                          "event", "--grid", "420502001002003", "--grids", str(grids),
                          "--format", "json"], capture_output=True, text=True)
    assert run.returncode == 1
    report = json.loads(run.stdout)
    assert [[(e["field"], e["code"]) for e in row["errors"]] for row in report["rows"]] == [
        [], [("location", "outside_grid")]]
    missing = subprocess.run([sys.executable, "-m", "gridcollect", "validate", str(events),
                              "--type", "event", "--grid", "420502001002009", "--grids",
                              str(grids)], capture_output=True, text=True)
    assert missing.returncode == 2 and "420502001002009 is not in" in missing.stderr
