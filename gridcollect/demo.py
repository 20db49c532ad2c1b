"""Demo data for a newcomer: grids, one user per role, and submissions in every state."""
from __future__ import annotations

import datetime
import json
import secrets

from . import accounts, clock, store, workflow
from .access import User

STREET = "420502001"
GRIDS = [  # (code, name, lon, lat of the south-west corner): 0.02° squares in 西陵区
    ("420502001001001", "演示街道第一社区第1网格", 111.26, 30.69),
    ("420502001001002", "演示街道第一社区第2网格", 111.26, 30.67),
    ("420502001002003", "演示街道第二社区第3网格", 111.28, 30.69),
    ("420502001002004", "演示街道第二社区第4网格", 111.28, 30.67),
]
AREA_NAMES = {"420502": "西陵区", STREET: "演示街道", "420502001001": "演示街道第一社区",
              "420502001002": "演示街道第二社区"}
USERS = [  # (username, role, scope)
    ("admin", "admin", []),
    ("supervisor", "supervisor", [STREET]),
    ("worker1", "worker", ["420502001001001"]),
    ("worker3", "worker", ["420502001002003"]),
    ("analyst", "analyst", ["420502"]),
]


def _square(lon, lat, size=0.02) -> str:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size],
            [lon, lat]]
    return json.dumps({"type": "Polygon", "coordinates": [ring]})


def _person(id_number, name, sex, birth, phone, **more) -> dict:
    return {"id_number": id_number, "name": name, "sex": sex, "birth_date": birth,
            "ethnicity": "01", "residence_type": "1", "phone": phone, **more}


def is_empty(db) -> bool:
    return not store.list_users(db) and store.count_grids(db) == 0


def fill(db, standards, scrypt_n=accounts.Settings.scrypt_n) -> list:
    """Fill an empty database; returns ``[(username, role, scope, password)]``."""
    at = clock.iso(clock.now())
    with store.write(db):
        store.upsert_grids(db, [(code, name, _square(lon, lat))
                                for code, name, lon, lat in GRIDS], at)
        store.upsert_area_names(db, AREA_NAMES, at)
        store.audit(db, [(at, "demo", "grids_import", "grids", None, {"grids": len(GRIDS)})])
    created = []
    for username, role, scope in USERS:
        password = secrets.token_urlsafe(9)
        accounts.add_user(db, "demo", username, role, scope, password, scrypt_n=scrypt_n)
        created.append((username, role, scope, password))
    collected = clock.iso(clock.now() - datetime.timedelta(hours=2))

    def item(client_id, record_type, grid_code, data):
        return {"client_id": client_id, "record_type": record_type, "grid_code": grid_code,
                "action": "upsert", "data": data, "collected_at": clock.parse(collected),
                "base_version": None, "replaces": None}

    grid3 = "420502001002003"
    worker3 = User("worker3", "worker", (grid3,))
    grids = workflow.GridCache()
    results = workflow.submit(db, standards, grids, worker3, [
        item("demo-1", "person", grid3, _person("420502197503151215", "刘德明", "1",
                                                "1975-03-15", "13907171234",
                                                house_code=f"{grid3}-012-01-0302")),
        item("demo-2", "person", grid3, _person("11010519491231002X", "张秀英", "2",
                                                "1949-12-31", "13812345678",
                                                special_groups=["独居老人"])),
        item("demo-3", "house", grid3, {"house_code": f"{grid3}-012-01-0302",
                                        "address": "演示街道第二社区12栋1单元302室",
                                        "usage": "1", "area": 89.5, "floor": 3,
                                        "total_floors": 7,
                                        "location": {"lat": 30.70, "lon": 111.29}}),
        item("demo-4", "event", grid3, {"event_type": "02",
                                        "description": "楼道堆放杂物，存在消防隐患",
                                        "occurred_at": collected, "urgency": "2",
                                        "location": {"lat": 30.70, "lon": 111.29}}),
        item("demo-5", "person", grid3, _person("420502199002301234", "赵强", "1",
                                                "1990-02-30", "12012345678")),  # invalid
    ])
    worker1 = User("worker1", "worker", ("420502001001001",))
    results += workflow.submit(db, standards, grids, worker1, [
        item("demo-6", "person", "420502001001001",
             _person("420502195505050021", "王秀兰", "2", "1955-05-05", "15072001234",
                     special_groups=["残疾人"])),
        item("demo-7", "event", "420502001001001", {
            "event_type": "01", "description": "邻里噪音纠纷（与昨日上报重复）",
            "occurred_at": collected, "location": {"lat": 30.70, "lon": 111.27}}),
    ])
    supervisor = User("supervisor", "supervisor", (STREET,))
    ids = {r["client_id"]: r["id"] for r in results}
    assert [r["status"] for r in results] == ["accepted"] * 4 + ["invalid"] + \
        ["accepted"] * 2, results
    workflow.review(db, supervisor, ids["demo-3"], "confirm", None)
    workflow.review(db, supervisor, ids["demo-2"], "return", "联系电话请与本人核实后重新提交")
    workflow.review(db, supervisor, ids["demo-7"], "reject", "与昨日上报的事件重复")
    return created
