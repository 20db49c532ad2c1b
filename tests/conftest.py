import datetime

import pytest
from shapely.geometry import box

from gridcollect import Grid, load_standards
from gridcollect.checks import CHINA, Context

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
