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


# --- figures the reliability tests report (kills, duplicates, fuzz cases ...) --------

FIGURES: dict = {}


@pytest.fixture(scope="session")
def figures():
    """``figures("kills", 1)`` adds to a figure printed at the end of the run."""
    def add(name, count=1):
        FIGURES[name] = FIGURES.get(name, 0) + count
    return add


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.write_sep("-", "reliability figures")
        for name, count in FIGURES.items():
            terminalreporter.write_line(f"{name}: {count:,}")


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


# --- the server -------------------------------------------------------------------

PASSWORD = "correct horse"
# grids: two in one community, one in another street
GRID_OTHER = "420502001002004"
GRID_FAR = "420502002001001"
GRID_BOXES = {GRID_CODE: GRID_BOX, GRID_OTHER: (111.28, 30.67, 111.30, 30.69),
              GRID_FAR: (111.30, 30.69, 111.32, 30.71)}
USERS = {  # username: (role, scope)
    "admin": ("admin", []),
    "w3": ("worker", [GRID_CODE]),
    "w4": ("worker", [GRID_OTHER]),
    "wfar": ("worker", [GRID_FAR]),
    "sup": ("supervisor", ["420502001002"]),
    "supfar": ("supervisor", ["420502002"]),
    "analyst": ("analyst", ["420502"]),
}
FAST_HASH = 2 ** 4  # tests need no slow password hash


def grid_geojson(code) -> str:
    import shapely
    return shapely.to_geojson(box(*GRID_BOXES[code]))


def seed(db):
    """Grids and one user of each kind, straight into a database."""
    from gridcollect import accounts, store
    with store.write(db):
        store.upsert_grids(db, [(code, f"网格{code[-3:]}", grid_geojson(code))
                                for code in GRID_BOXES], "2026-01-01T00:00:00.000+08:00")
    for username, (role, scope) in USERS.items():
        accounts.add_user(db, "test", username, role, scope, PASSWORD, scrypt_n=FAST_HASH)


def id_number(index: int, birth="19800101", region="420502") -> str:
    from stdnum.iso7064 import mod_11_2
    body = f"{region}{birth}{index % 1000:03d}"
    return body + mod_11_2.calc_check_digit(body)


def person(index: int = 1, **changes) -> dict:
    number = id_number(index)
    record = {"id_number": number, "name": "张伟", "sex": "1" if int(number[16]) % 2 else "2",
              "birth_date": "1980-01-01", "ethnicity": "01", "residence_type": "1",
              "phone": "13812345678"}  # the overlay of 420502001002 requires a phone
    record.update(changes)
    return record


def event(**changes) -> dict:
    record = {"event_type": "02", "description": "楼道堆放杂物，存在消防隐患",
              "occurred_at": "2026-11-20T09:30:00+08:00",
              "location": {"lat": 30.70, "lon": 111.29}}
    record.update(changes)
    return record


# yesterday at ten, as a phone writes it: inside the window an entry may be collected in
COLLECTED_AT = (datetime.datetime.now(CHINA) - datetime.timedelta(days=1)).replace(
    hour=10, minute=0, second=0, microsecond=0).isoformat()


def item(client_id, data=None, record_type="person", grid_code=GRID_CODE, **more) -> dict:
    return {"client_id": client_id, "record_type": record_type, "grid_code": grid_code,
            "action": "upsert", "data": person() if data is None else data,
            "collected_at": COLLECTED_AT, **more}


def send_and_confirm(login, client_id, data, record_type="person", worker="w3",
                     grid_code=GRID_CODE, supervisor="sup") -> int:
    """Submit one record as ``worker`` and have ``supervisor`` confirm (merge) it."""
    result = login(worker).submit(item(client_id, data, record_type=record_type,
                                       grid_code=grid_code)).json["results"][0]
    assert result["status"] == "accepted", result
    review = login(supervisor).post(f"/api/v1/submissions/{result['id']}/review",
                                    json={"action": "confirm"})
    assert review.json["state"] == "confirmed"
    return result["id"]


def derived_tables(db) -> dict:
    """What merges and their triggers derive from the submissions (records, history,
    monitoring figures), row by row: equal to a rebuild's, or something was half done."""
    tables = {}
    for table, order in (("records", "record_type, key"), ("record_history", "seq"),
                         ("monitor_areas", "area"), ("monitor_records", "area, record_type"),
                         ("monitor_workers", "grid_code, worker"),
                         ("monitor_field_errors", "area, record_type, field, code"),
                         ("monitor_review_times", "area, seconds")):
        tables[table] = [tuple(row) for row in db.execute(
            f"SELECT * FROM {table} ORDER BY {order}")]
    return tables


class Caller:
    """A test client that sends one user's bearer token."""

    def __init__(self, client, token):
        self.client, self.token = client, token
        self.headers = {"Authorization": f"Bearer {token}"}

    def __getattr__(self, method):  # get, post, patch, delete, ...
        call = getattr(self.client, method)
        return lambda path, **kw: call(path, headers={**self.headers,
                                                      **kw.pop("headers", {})}, **kw)

    def submit(self, *items):
        return self.client.post("/api/v1/submissions", json={"submissions": list(items)},
                                headers=self.headers)


@pytest.fixture
def app(tmp_path):
    from gridcollect.app import create_app
    app = create_app({"DATABASE": str(tmp_path / "test.db"), "SCRYPT_N": FAST_HASH,
                      "TESTING": True})
    seed(app.extensions["gridcollect"].db())
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db(app):
    return app.extensions["gridcollect"].db()


@pytest.fixture
def login(client):
    """``login("w3")`` -> a Caller with that user's token."""
    tokens = {}

    def login(username):
        if username not in tokens:
            response = client.post("/api/v1/auth/token",
                                   json={"username": username, "password": PASSWORD})
            assert response.status_code == 200, response.json
            tokens[username] = response.json["token"]
        return Caller(client, tokens[username])

    return login
