import datetime
import shutil

import pytest
import yaml
from shapely.geometry import box

from gridcollect import Grid, load_standards
from gridcollect.checks import CHINA, Context
from gridcollect.standards import DEFAULT_PATH

NOW = datetime.datetime(2026, 11, 21, 12, 0, tzinfo=CHINA)
GRID_CODE = "420502001002003"
# A small cell in 西陵区, 宜昌 (WGS 84 lon/lat)
GRID_BOX = (111.28, 30.69, 111.30, 30.71)


@pytest.fixture(scope="session")
def standards():
    return load_standards()


@pytest.fixture(scope="session")
def grid():
    return Grid(GRID_CODE, "测试网格", box(*GRID_BOX))


@pytest.fixture(scope="session")
def context(grid):
    return Context(grid, NOW)


@pytest.fixture
def standards_folder(tmp_path):
    """A writable copy of the bundled field_standards/ folder."""
    folder = tmp_path / "field_standards"
    shutil.copytree(DEFAULT_PATH, folder)
    return folder


def edit_yaml(path, change):
    """Load a YAML file, let ``change`` mutate the data, write it back."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def write_overlay(folder, prefix, record_type, text):
    """Write ``overlays/PREFIX/RECORD_TYPE.yaml`` into a standards folder."""
    (folder / "overlays" / prefix).mkdir(exist_ok=True)
    (folder / "overlays" / prefix / f"{record_type}.yaml").write_text(text, encoding="utf-8")
