"""Build a realistic city database for the benchmarks: Yichang (宜昌), five districts.

    python bench/make_city.py OUT.db        # 1,000,000 persons, 400,000 houses, ...
    python bench/make_city.py /tmp/small.db --persons 20000 --houses 8000 --orgs 1000 \\
        --events 1200 --grids 200 --verify  # quick check, ~15 s

Options: --persons 1000000 --houses 400000 --orgs 50000 --events 60000
--grids 11000 --seed 1; --sample N (records validated per type, default 2000);
--verify (rebuild a copy and compare); --triggers (see below). OUT.db must not exist.

Written through the project's own store (``store.connect``, ``store.migrate``,
``upsert_grids``, ``insert_user``, ``insert_submissions``, ``add_invalid_attempts``)
in large executemany batches. The monitor triggers of submissions, records and
invalid_attempts are dropped for the bulk load, then recreated as the migration
made them and every figure recounted (``store.recount_monitor``): the 1M build
takes ~8 minutes so, and more than 15 with them on (``--triggers`` keeps them on;
``--triggers --verify`` checks what they counted against a recount).

- grids: 15-digit codes (district 6 + street 3 + community 3 + grid 3) in the real
  districts 420502 西陵区, 420503 伍家岗区, 420504 点军区, 420505 猇亭区 and 420506
  夷陵区 (real street names), 6-16 grids per community, each a small GeoJSON box;
- users: one worker per grid (a second in 20% of grids) scoped to it, ``admin``,
  ``analyst`` (the five districts) and ``sup-<district>`` per district, all with
  the password ``bench-Passw0rd-2024`` (scrypt N=16: fast logins, bench only);
- persons (GB 11643 ID numbers: GB/T 2260 region, real check digit, sex digit
  matching; a phone for everyone in 420502001002, whose overlay requires it),
  houses (``<grid>-<bldg>-<unit>-<room>``, located inside the grid box),
  organisations (GB 32100 codes with both check characters) and events;
- submissions received 2026-05-06 .. 2026-11-12 (a census in the first two months,
  then upkeep), collected minutes to days before; about 91% confirmed, the rest
  pending (mostly the last month), returned (60% corrected by a later submission
  that names it), rejected, or in conflict (a stale base_version); ~10% of the
  records updated later (base_version 1, some moving to a neighbouring grid), a
  few retired; ~5% of submissions follow an invalid attempt, whose errors are the
  standard's own verdict on a realistically mistyped copy of the record.

Master records and history are what ``merge.apply`` makes of the confirmed
submissions in review order; merge_seq follows review_at, as in the server. Each
submission is inserted pending, then reviewed by an UPDATE in that order (what
``store.set_reviews`` does). The data is generated already normalised; a random
sample of each type is validated against its effective standard at its receipt
time (the build stops on the first invalid one). ``--verify`` runs
``workflow.rebuild`` on a copy and checks that the records, history and every
monitor table come out the same. No audit entries are written for submissions and
reviews. Prints counts, time per phase and file size.
"""
from __future__ import annotations

import argparse
import bisect
import collections
import datetime
import itertools
import json
import math
import pathlib
import random
import sqlite3
import sys
import tempfile
import time
import uuid

import shapely
from stdnum.iso7064 import mod_11_2

from gridcollect import accounts, clock, ids, merge, store, workflow
from gridcollect.checks import CHINA
from gridcollect.grids import Grid
from gridcollect.standards import load_standards

PASSWORD = "bench-Passw0rd-2024"
SCRYPT_N = 16
START = datetime.datetime(2026, 5, 6, tzinfo=CHINA)
DAYS = 191  # END is 2026-11-13 00:00
END = DAYS * 86400.0  # seconds after START; reviews due later are still pending
CHUNK = 50_000  # rows per write transaction
OVERLAY = "420502001002"  # its person overlay requires a phone, adds dog_registration

DISTRICTS = [  # code, name, share of grids, density, SW corner (lon, lat), box size (°), streets
    ("420502", "西陵区", 0.24, 1.4, (111.20, 30.68), 0.0025,
     ["西陵街道", "学院街道", "云集街道", "西坝街道", "葛洲坝街道", "夜明珠街道", "窑湾街道"]),
    ("420503", "伍家岗区", 0.22, 1.3, (111.34, 30.60), 0.003,
     ["大公桥街道", "万寿桥街道", "宝塔河街道", "伍家岗街道", "伍家乡"]),
    ("420504", "点军区", 0.10, 0.6, (111.02, 30.50), 0.005,
     ["点军街道", "艾家镇", "桥边镇", "联棚乡", "土城乡"]),
    ("420505", "猇亭区", 0.09, 0.8, (111.50, 30.42), 0.005, ["古老背街道", "云池街道", "虎牙街道"]),
    ("420506", "夷陵区", 0.35, 0.8, (111.10, 30.82), 0.006,
     ["小溪塔街道", "樟村坪镇", "雾渡河镇", "分乡镇", "太平溪镇", "三斗坪镇", "乐天溪镇",
      "龙泉镇", "鸦鹊岭镇", "黄花镇", "下堡坪乡", "邓村乡"]),
]
PLACES = ("桃花岭 夷陵 东山 环城 滨江 锦绣 紫阳 朝阳 胜利 珍珠 白龙 仁和 合益 南湖 北苑 樵湖 "
          "沙河 车站 花艳 宝塔 万寿 共联 新坝 长江 三峡 平湖 望洲 东湖 西湖 前坪 云湾 龙盘 "
          "金岸 柏临 杨林 石板 桔城 黄柏 清江 磨基").split()
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
            "蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹"
            "薛段雷侯龙史陶黎贺顾毛郝龚邵万覃向汤")
GIVEN = {"1": "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林阳建国志文",
         "2": "芳娜敏静丽艳娟霞秀英兰桂梅玉萍红燕琳丹颖慧倩婷雪琴云莉佳欣怡悦婉蓉"}
MOBILE = [str(p) for p in (*range(130, 140), 150, 151, 152, 155, 156, 157, 158, 159, 166,
                           176, 177, *range(180, 190), 199)]
LOCAL = ["420502", "420503", "420504", "420505", "420506", "420525", "420526", "420527",
         "420528", "420529", "420581", "420582", "420583"]
NOTES = {"return": ["联系电话与本人不符，请核实后重新提交", "房屋编码有误，请与门牌核对",
                    "姓名有错别字", "位置偏离实际地址较远，请重新定位", "缺少户籍地信息"],
         "reject": ["重复采集", "非本网格人员", "信息无法核实", "测试数据"]}
EVENTS = {"01": ["邻里因噪音发生纠纷", "楼上漏水引发邻里矛盾", "物业费纠纷，业主与物业争执"],
          "02": ["楼道堆放杂物，存在消防隐患", "电动车在楼道内充电", "老旧电线裸露，存在触电风险"],
          "03": ["垃圾桶满溢未及时清运", "绿化带内有建筑垃圾", "下水道堵塞污水外溢"],
          "04": ["小区内电动车电瓶被盗", "夜间有人在路边聚集喧哗"],
          "05": ["独居老人需要上门送餐服务", "路灯损坏多日未修", "居民反映自来水水压不足"],
          "99": ["其他需社区协调的事项：共享单车乱停放"]}


def at(seconds: float) -> str:
    """The stored form (clock.iso's) of the moment ``seconds`` after START; fast."""
    day, ms = divmod(math.floor(seconds * 1000), 86_400_000)
    if day not in _DATES:
        _DATES[day] = (START + datetime.timedelta(days=day)).date().isoformat()
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    return f"{_DATES[day]}T{h:02d}:{m:02d}:{ms // 1000:02d}.{ms % 1000:03d}+08:00"


_DATES = {}


def bag(weights: str) -> tuple:
    """``"a:2 b:1"`` -> ``("a", "a", "b")``: ``rng.choice`` of it is a weighted choice."""
    return tuple(v for item in weights.split() for v in [item.rsplit(":", 1)[0]]
                 * int(item.rsplit(":", 1)[1]))


def split(total: int, weights: list) -> list:
    """``total`` split in proportion to ``weights`` (integers summing to ``total``)."""
    shares = [total * w / sum(weights) for w in weights]
    out = [int(s) for s in shares]
    for i in sorted(range(len(out)), key=lambda i: out[i] - shares[i])[:total - sum(out)]:
        out[i] += 1
    return out


# --- grids and users -------------------------------------------------------------------

def make_grids(rng: random.Random, count: int) -> list:
    """Grid cells over the five districts: dicts with code, name, box, density."""
    grids = []
    for district, dname, share, density, (lon0, lat0), size, streets in DISTRICTS:
        n = (round(count * share) if district != DISTRICTS[-1][0]
             else count - len(grids))
        n_streets = max(1, min(len(streets), n // 20))
        cols, k = max(1, math.ceil(math.sqrt(n))), 0
        for s, street_n in enumerate(split(n, [rng.uniform(0.6, 1.4)
                                               for _ in range(n_streets)]), start=1):
            street, c = streets[s - 1], 0
            while street_n > 0:
                c += 1
                size_c = min(street_n, rng.randint(6, 16))
                street_n -= size_c
                place = PLACES[(s * 7 + c) % len(PLACES)] + (
                    str(c // len(PLACES) + 1) if c > len(PLACES) else "")
                community = place + ("社区" if street.endswith("街道") else "村")
                for g in range(1, size_c + 1):
                    x, y = lon0 + (k % cols) * size, lat0 + (k // cols) * size
                    k += 1
                    grids.append({"code": f"{district}{s:03d}{c:03d}{g:03d}",
                                  "name": f"{street}{community}第{g}网格",
                                  "address": f"宜昌市{dname}{street}{community}",
                                  "areas": {district: dname, f"{district}{s:03d}": street,
                                            f"{district}{s:03d}{c:03d}": community},
                                  "box": (round(x, 6), round(y, 6), round(x + size, 6),
                                          round(y + size, 6)),
                                  "urban": street.endswith("街道"),
                                  "weight": density * rng.lognormvariate(0, 0.5)})
    return grids


def geometry(grid: dict) -> str:
    x0, y0, x1, y1 = grid["box"]
    return json.dumps({"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1],
                                                           [x0, y1], [x0, y0]]]})


def write_grids(db, grids: list):
    with store.write(db):
        store.upsert_grids(db, [(g["code"], g["name"], geometry(g)) for g in grids],
                           at(-30 * 86400))
        store.upsert_area_names(db, {code: name for g in grids
                                     for code, name in g["areas"].items()}, at(-30 * 86400))


def add_users(db, rng: random.Random, grids: list) -> int:
    """Workers per grid (``grid["workers"]``), admin, analyst, a supervisor per district."""
    now = at(-30 * 86400)
    with store.write(db):
        for grid in grids:
            grid["workers"] = [f"w{grid['code']}"] + (
                [f"w{grid['code']}-2"] if rng.random() < 0.2 else [])
            for name in grid["workers"]:
                store.insert_user(db, name, "worker", [grid["code"]],
                                  accounts.hash_password(PASSWORD, SCRYPT_N), False, now)
    districts = [d[0] for d in DISTRICTS]
    people = [("admin", "admin", []), ("analyst", "analyst", districts)] + [
        (f"sup-{d}", "supervisor", [d]) for d in districts]
    for name, role, scope in people:
        accounts.add_user(db, "make_city", name, role, scope, PASSWORD, scrypt_n=SCRYPT_N)
    return sum(len(g["workers"]) for g in grids) + len(people)


# --- records ---------------------------------------------------------------------------

USAGE, ETHNICITY, RESIDENCE = bag("1:70 2:18 3:8 4:3 9:1"), bag("01:90 15:9 03:1"), bag(
    "1:80 2:18 4:2")
MARITAL, POLITICAL = bag("20:70 10:15 30:9 40:6"), bag("13:82 01:10 03:8")
AUTHORITY = bag("91:80 92:9 93:2 12:3 51:2 52:4")
EVENT_TYPE, URGENCY = bag("01:20 02:25 03:25 04:8 05:20 99:2"), bag("1:80 2:17 3:3")
OUTCOME = bag("confirm:915 return:25 reject:15 pending:45")
SHOPS = ("建材有限公司", "便利店", "餐饮店", "物业服务有限公司", "商贸有限公司", "汽车维修部",
         "药房", "幼儿园", "农民专业合作社", "科技有限公司")


class Records:
    """Valid, already normalised records: unique national identifiers, in-grid places."""

    def __init__(self, rng: random.Random, standards):
        self.rng, self.seen = rng, set()
        self.regions = [code for code, entry in standards.code_tables["gb_t_2260"].codes.items()
                        if entry.until is None and not code.endswith("00")]

    def point(self, grid) -> dict:
        x0, y0, x1, y1 = grid["box"]
        r = self.rng
        return {"lat": round(y0 + (y1 - y0) * r.uniform(0.05, 0.95), 6),
                "lon": round(x0 + (x1 - x0) * r.uniform(0.05, 0.95), 6)}

    def id_number(self, birth: datetime.date) -> str:
        """GB 11643: region (mostly Yichang), birth date, sequence, check digit."""
        r = self.rng
        while True:
            region = r.choice(LOCAL) if r.random() < 0.75 else r.choice(self.regions)
            body = f"{region}{birth:%Y%m%d}{r.randrange(1000):03d}"
            number = body + mod_11_2.calc_check_digit(body)
            if number not in self.seen:
                self.seen.add(number)
                return number

    def name(self, sex: str) -> str:
        r = self.rng
        return r.choice(SURNAMES) + "".join(r.choices(GIVEN[sex], k=r.choice((1, 2, 2))))

    def phone(self) -> str:
        return self.rng.choice(MOBILE) + f"{self.rng.randrange(10 ** 8):08d}"

    def houses(self, grid, count: int) -> list:
        """``count`` houses in buildings of the grid: towers in town, low houses outside."""
        r, out, bldg = self.rng, [], 0
        while len(out) < count:
            bldg += 1
            floors = r.choice((6, 7, 11, 18, 26, 33)) if grid["urban"] else r.randint(1, 4)
            units, per_floor = (r.randint(1, 4), r.randint(2, 4)) if grid["urban"] else (1, 1)
            for unit, floor, k in itertools.product(range(1, units + 1), range(1, floors + 1),
                                                    range(1, per_floor + 1)):
                if len(out) == count:
                    break
                out.append({
                    "house_code": f"{grid['code']}-{bldg:03d}-{unit:02d}-{floor:02d}{k:02d}",
                    "address": f"{grid['address']}{bldg}栋{unit}单元{floor}{k:02d}室",
                    "usage": r.choice(USAGE), "area": round(r.uniform(38, 160), 2),
                    "floor": floor, "total_floors": floors, "location": self.point(grid)})
        return out

    def person(self, grid, houses: list) -> dict:
        """A resident, living in one of ``houses`` (and now and then its owner)."""
        r = self.rng
        age = min(98.0, abs(r.gauss(40, 22)))
        birth = (START - datetime.timedelta(days=200 + age * 365.25)).date()
        number = self.id_number(birth)
        sex, adult = ids.id_sex(number), age >= 18
        record = {"id_number": number, "name": self.name(sex), "sex": sex,
                  "birth_date": birth.isoformat(), "ethnicity": r.choice(ETHNICITY)}
        if grid["code"].startswith(OVERLAY) or r.random() < (0.95 if adult else 0.2):
            record["phone"] = self.phone()
        record["residence_type"] = r.choice(RESIDENCE)
        record["household_region"] = number[:6] if r.random() < 0.8 else grid["code"][:6]
        if houses:
            house = r.choice(houses)
            record["house_code"] = house["house_code"]
            if adult and "owner_id_number" not in house and r.random() < 0.7:
                house["owner_id_number"], house["owner_name"] = number, record["name"]
        record["relationship"] = (r.choice(("02", "10", "50", "70")) if adult
                                  else "20" if sex == "1" else "30")
        record["education"] = r.choice(("21", "31", "41", "61", "71", "81", "14")) if adult \
            else "80"
        record["marital_status"] = r.choice(MARITAL) if age >= 22 else "10"
        record["political_status"] = r.choice(POLITICAL) if adult else "13"
        groups = [g for g, p in (("独居老人", 0.12 * (age > 70)), ("低保对象", 0.02),
                                 ("残疾人", 0.03), ("退役军人", 0.04 * adult * (sex == "1")),
                                 ("留守儿童", 0.03 * (age < 14))) if r.random() < p]
        if groups:
            record["special_groups"] = groups
        if grid["code"].startswith(OVERLAY) and r.random() < 0.1:
            record["dog_registration"] = f"YC-{r.randint(2019, 2025)}-{r.randrange(10 ** 6):06d}"
        return record

    def uscc(self, district: str) -> str:
        """GB 32100: authority and type, district, GB 11714 code with its check, check."""
        r = self.rng
        while True:
            body = ("MA" + "".join(r.choice(ids.USCC_ALPHABET) for _ in range(6))
                    if r.random() < 0.6 else f"{r.randrange(10 ** 8):08d}")
            head = f"{r.choice(AUTHORITY)}{district}{body}{ids.org_code_check_character(body)}"
            code = head + ids.uscc_check_character(head)
            if code not in self.seen:
                self.seen.add(code)
                return code

    def organization(self, grid) -> dict:
        r = self.rng
        birth = (START - datetime.timedelta(days=r.randint(25 * 365, 65 * 365))).date()
        return {"uscc": self.uscc(grid["code"][:6]),
                "name": f"宜昌{r.choice(PLACES)}{r.choice(('鑫达', '恒信', '兴旺', '华宇'))}"
                        f"{r.choice(SHOPS)}",
                "legal_rep_name": self.name(r.choice("12")),
                "legal_rep_id_number": self.id_number(birth),
                "address": f"{grid['address']}{r.randint(1, 300)}号",
                "employees": int(r.lognormvariate(1.6, 1.1)),
                "phone": self.phone() if r.random() < 0.5
                else f"0717{r.choice('3456')}{r.randrange(10 ** 6):06d}",  # a landline
                "location": self.point(grid)}

    def event(self, grid, collected: float) -> dict:
        r = self.rng
        kind = r.choice(EVENT_TYPE)
        occurred = START + datetime.timedelta(seconds=int(collected - r.uniform(600, 3 * 86400)))
        record = {"event_type": kind, "description": r.choice(EVENTS[kind]),
                  "occurred_at": clock.iso(occurred)}  # the stored form
        if r.random() < 0.8:
            record["urgency"] = r.choice(URGENCY)
        record["location"] = self.point(grid)
        return record

    def mistyped(self, record_type: str, data: dict, other_grid: str) -> dict:
        """A copy with one of the mistakes grid workers make."""
        r, bad = self.rng, dict(data)
        if record_type == "person":
            number, birth = bad["id_number"], bad["birth_date"]
            bad.update(r.choice((
                {"id_number": number[:-1] + ("0" if number[-1] != "0" else "1")},
                {"sex": "2" if bad["sex"] == "1" else "1"},
                {"birth_date": birth[:5] + ("02-30" if birth[5:] != "02-30" else "13-01")},
                {"ethnicity": "57"}, {"phone": self.phone()[:10]}, {"name": None},
                {"household_region": "420599"})))
        elif record_type == "house":
            bad.update(r.choice((
                {"house_code": other_grid + bad["house_code"][15:]},
                {"location": {"lat": bad["location"]["lat"] + 0.05,
                              "lon": bad["location"]["lon"]}},
                {"floor": bad["total_floors"] + 1}, {"usage": "7"})))
        elif record_type == "organization":
            uscc = bad["uscc"]
            bad.update(r.choice(({"uscc": uscc[:-1] + ("0" if uscc[-1] != "0" else "1")},
                                 {"phone": "0717-12345"}, {"address": ""})))
        else:
            bad.update(r.choice(({"description": "漏水"}, {"event_type": "07"},
                                 {"occurred_at": "2062" + bad["occurred_at"][4:]})))
        return {k: v for k, v in bad.items() if v is not None}


# --- the campaign ----------------------------------------------------------------------

class Sub:
    """A submission: the store's columns, read as ``sub["column"]`` by
    ``store.insert_submissions`` and ``merge.apply``, and its plan (slots, for a
    million and a half of them)."""

    __slots__ = ("id", *store.SUBMISSION_COLUMNS, "review_by", "review_at", "review_note",
                 "merge_seq", "conflict", "outcome", "due", "corrects")

    def __init__(self, **values):
        for name in self.__slots__:
            setattr(self, name, values.get(name))

    def __getitem__(self, name):
        return getattr(self, name)


class Campaign:
    """Every submission of the six months, with its review outcome and time."""

    def __init__(self, rng, standards, grids):
        self.rng, self.standards, self.grids = rng, standards, grids
        self.by_code = {g["code"]: g for g in grids}
        self.keys = {t: standards.effective(t).natural_key
                     for t in ("person", "house", "organization", "event")}
        self.subs, self.invalid, self._versions = [], [], {}

    def version(self, record_type, grid_code) -> str:
        key = record_type, grid_code[:12]  # overlays exist down to communities
        if key not in self._versions:
            self._versions[key] = self.standards.effective(record_type, grid_code).version
        return self._versions[key]

    def add(self, record_type, grid, data, collected, action="upsert", base_version=None,
            corrects=None, outcome=None) -> Sub | None:
        """A submission collected at ``collected`` (seconds after START), None if it
        would arrive after the end; its review outcome and time are drawn here."""
        r = self.rng
        received = collected + (r.expovariate(1 / 1200) if r.random() < 0.9
                                else r.uniform(86400, 3 * 86400))  # offline for days
        if received >= END:
            return None
        outcome = outcome or r.choice(OUTCOME)
        if outcome == "pending" and r.random() < 0.9:  # the backlog: mostly last month's
            received = max(received, END - r.uniform(0, 30 * 86400))
            collected = max(collected, received - r.uniform(60, 3600))
        key = self.keys[record_type]
        sub = Sub(worker=r.choice(grid["workers"]),
                  client_id=str(uuid.UUID(int=r.getrandbits(128), version=4)),
                  record_type=record_type, grid_code=grid["code"], action=action,
                  natural_key=data[key] if key else None, data=data, state="pending",
                  collected_at=collected, received_at=received,
                  standard_version=self.version(record_type, grid["code"]),
                  base_version=base_version, corrects=corrects, outcome=outcome,
                  due=received + min(45 * 86400, r.lognormvariate(math.log(20 * 3600), 1.1)))
        self.subs.append(sub)
        if action == "upsert" and r.random() < 0.05:
            self.invalid.append((sub, received - r.uniform(60, 1800)))
        return sub

    def day_time(self, census: bool) -> float:
        """A working-hours moment: the census fills the first 60 days, upkeep all."""
        day = self.rng.randrange(60 if census else DAYS)
        return day * 86400 + self.rng.uniform(8.5, 18) * 3600

    def follow_ups(self, records: Records, sub: Sub, houses: dict):
        """The correction of a returned submission; updates or retirement of a record."""
        r, grid, done = self.rng, self.by_code[sub.grid_code], sub.due
        if sub.outcome == "pending" or done >= END:
            return
        if sub.outcome == "return" and r.random() < 0.6:
            fixed = dict(sub.data)
            if "phone" in fixed and sub.record_type == "person":
                fixed["phone"] = records.phone()
            self.add(sub.record_type, grid, fixed, done + r.uniform(1800, 5 * 86400),
                     corrects=sub)
        if sub.outcome != "confirm" or sub.record_type == "event":
            return
        if r.random() < 0.14:
            new_grid = grid  # now and then a person moves to the next grid of the community
            if sub.record_type == "person" and r.random() < 0.08:
                new_grid = self.by_code.get(f"{grid['code'][:12]}{int(grid['code'][12:]) + 1:03d}",
                                            grid)
            data = self.changed(records, sub.record_type, sub.data, new_grid, houses)
            first = self.add(sub.record_type, new_grid, data,
                             done + r.uniform(86400, 150 * 86400), base_version=1)
            if first and first.outcome == "confirm" and first.due < END and r.random() < 0.15:
                data = self.changed(records, sub.record_type, data, new_grid, houses)
                self.add(sub.record_type, new_grid, data, first.due + r.uniform(86400, 30 * 86400),
                         base_version=1 if r.random() < 0.1 else 2)  # 1: from a stale copy
        elif sub.record_type in ("person", "organization") and r.random() < 0.007:
            self.add(sub.record_type, grid, {self.keys[sub.record_type]: sub.natural_key},
                     done + r.uniform(86400, 120 * 86400), action="retire")

    def changed(self, records: Records, record_type, data, grid, houses) -> dict:
        """The record as a later visit finds it (the whole record, as phones send it)."""
        r, new = self.rng, dict(data)
        if record_type == "person":
            if "phone" in new or r.random() < 0.5:
                new["phone"] = records.phone()
            if r.random() < 0.3:
                new["marital_status"] = r.choice(("20", "30", "40"))
            if houses.get(grid["code"]) and new.get("house_code", "")[:15] != grid["code"]:
                new["house_code"] = r.choice(houses[grid["code"]])["house_code"]
            if r.random() < 0.2:
                new["special_groups"] = sorted({*new.get("special_groups", []), "失业人员"})
        elif record_type == "house":
            new["usage"] = r.choice("1234")
            if r.random() < 0.3:
                new["owner_id_number"] = records.id_number(
                    (START - datetime.timedelta(days=r.randint(9000, 25000))).date())
                new["owner_name"] = records.name(ids.id_sex(new["owner_id_number"]))
        else:
            new["employees"] = max(0, new["employees"] + r.randint(-3, 8))
            new["phone"] = records.phone()
        return new


def plan(args, rng, standards, grids) -> Campaign:
    """Every record and submission, in order of receipt (ids assigned), times stored."""
    records, campaign = Records(rng, standards), Campaign(rng, standards, grids)
    cum = list(itertools.accumulate(g["weight"] for g in grids))

    def allot(n):  # a grid per record, by grid weight
        return [grids[bisect.bisect_left(cum, rng.random() * cum[-1])] for _ in range(n)]

    houses = {}
    for grid in allot(args.houses):
        houses[grid["code"]] = houses.get(grid["code"], 0) + 1
    houses = {g["code"]: records.houses(g, houses[g["code"]]) for g in grids if g["code"] in houses}
    persons = [(g, records.person(g, houses.get(g["code"], []))) for g in allot(args.persons)]
    creates = ([("person", g, d) for g, d in persons]
               + [("house", g, d) for g in grids for d in houses.get(g["code"], [])]
               + [("organization", g, records.organization(g)) for g in allot(args.orgs)])
    for record_type, grid, data in creates:
        campaign.add(record_type, grid, data, campaign.day_time(rng.random() < 0.6))
    for grid in allot(args.events):
        moment = campaign.day_time(False)
        campaign.add("event", grid, records.event(grid, moment), moment)
    for sub in list(campaign.subs):
        campaign.follow_ups(records, sub, houses)
    campaign.records = records
    campaign.subs.sort(key=lambda s: s.received_at)
    for sid, sub in enumerate(campaign.subs, start=1):
        sub.id = sid
    for sub in campaign.subs:
        sub.replaces = sub.corrects.id if sub.corrects else None
        sub.collected_at, sub.received_at = at(sub.collected_at), at(sub.received_at)
    return campaign


# --- checks and writing ----------------------------------------------------------------

def grid_object(campaign, code, cache={}) -> Grid:  # noqa: B006 - a cache on purpose
    if code not in cache:
        g = campaign.by_code[code]
        cache[code] = Grid(code, g["name"], shapely.from_geojson(geometry(g)))
    return cache[code]


def validate_sample(campaign: Campaign, per_type: int) -> int:
    """Validate up to ``per_type`` submissions of each type, and as many persons of the
    overlay community, against their effective standard at their receipt time."""
    rng, checked = random.Random(7), 0
    upserts = [s for s in campaign.subs if s.action == "upsert"]
    for record_type in ("person", "house", "organization", "event"):
        group = [s for s in upserts if s.record_type == record_type]
        sample = rng.sample(group, min(per_type, len(group)))
        if record_type == "person":
            sample += [s for s in group if s.grid_code.startswith(OVERLAY)][:per_type]
        for sub in sample:
            standard = campaign.standards.effective(record_type, sub.grid_code)
            result = standard.validate(sub.data, grid_object(campaign, sub.grid_code),
                                       datetime.datetime.fromisoformat(sub.received_at))
            if not result.valid or result.document != sub.data:
                raise SystemExit(f"generated {record_type} is not valid or not normalised: "
                                 f"{result.as_dict()} {sub.data} -> {result.document}")
            assert sub.standard_version == standard.version, (sub.standard_version, standard)
            checked += 1
    return checked


def invalid_attempts(campaign: Campaign) -> list:
    """The invalid attempts before some submissions, with the standard's own errors."""
    rows = []
    for sub, moment in sorted(campaign.invalid, key=lambda x: x[1]):
        other = sub.grid_code  # another grid, for a house code copied from the wrong cell
        while other == sub.grid_code:
            other = campaign.rng.choice(campaign.grids)["code"]
        bad = campaign.records.mistyped(sub.record_type, sub.data, other)
        result = campaign.standards.effective(sub.record_type, sub.grid_code).validate(
            bad, grid_object(campaign, sub.grid_code), START + datetime.timedelta(seconds=moment))
        assert not result.valid, (sub.record_type, bad)
        rows.append({"worker": sub.worker, "client_id": sub.client_id,
                     "record_type": sub.record_type, "grid_code": sub.grid_code,
                     "at": at(moment), "errors": [e.as_dict() for e in result.errors]})
    return rows


def chunked(rows, size=CHUNK):
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def insert(db, table: str, columns, rows):
    db.conn.executemany(f"INSERT INTO {table} ({', '.join(columns)})"
                        f" VALUES ({', '.join('?' * len(columns))})", rows)


def review(db, campaign: Campaign) -> dict:
    """Every review in time order, merged as the server merges (``merge.apply``, a
    conflict when stale) and written as ``store.set_review`` writes it, with the
    history; one transaction per CHUNK reviews. The master records, by key."""
    records, seq, reviews, history = {}, 0, [], []
    due = sorted((s for s in campaign.subs if s.outcome != "pending" and s.due < END),
                 key=lambda s: (s.due, s.id))
    for n, sub in enumerate(due, start=1):
        sub.review_by, sub.review_at = f"sup-{sub.grid_code[:6]}", at(sub.due)
        if sub.outcome != "confirm":
            sub.state = "returned" if sub.outcome == "return" else "rejected"
            sub.review_note = campaign.rng.choice(NOTES[sub.outcome])
        else:
            key = sub.record_type, merge.record_key(sub)
            # moves stay inside a community: its district's supervisor oversees both grids
            outcome = merge.apply(records.get(key), sub, seq + 1, sub.review_by, sub.review_at,
                                  may_move=True)
            assert not outcome.needs_move
            if outcome.conflict:
                sub.state, sub.conflict = "conflict", store._json(outcome.conflict)
            else:
                seq += 1
                sub.state, sub.merge_seq = "confirmed", seq
                if outcome.changed:
                    records[key] = outcome.record
                    entry = {**outcome.history, "changes": store._json(outcome.history["changes"])}
                    history.append([entry[c] for c in store.HISTORY_COLUMNS])
        reviews.append((sub.state, sub.review_by, sub.review_at, sub.review_note, sub.merge_seq,
                        sub.conflict, sub.id))
        if len(reviews) == CHUNK or n == len(due):
            with store.write(db):
                updated = db.conn.executemany(
                    "UPDATE submissions SET state = ?, review_by = ?, review_at = ?,"
                    " review_note = ?, merge_seq = ?, conflict = ? WHERE id = ?"
                    " AND state = 'pending'", reviews).rowcount
                assert updated == len(reviews), (updated, len(reviews))
                insert(db, "record_history", store.HISTORY_COLUMNS, history)
            reviews, history = [], []
    return records


def write(db, campaign: Campaign, attempts: list, timings: dict, triggers: bool) -> dict:
    """Everything, in transactions of CHUNK rows; the master records by key."""
    t = time.perf_counter()
    saved = [] if triggers else db.execute(  # the monitor triggers of the bulk-loaded tables
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'monitor%'"
        " AND tbl_name IN ('submissions', 'records', 'invalid_attempts')").fetchall()
    with store.write(db):
        for name, _ in saved:
            db.execute(f"DROP TRIGGER {name}")
    for part in chunked(campaign.subs):  # all pending at first, in order of receipt
        with store.write(db):
            store.insert_submissions(db, part)
    assert db.execute("SELECT max(id) FROM submissions").fetchone()[0] == len(campaign.subs)
    timings["insert submissions"] = time.perf_counter() - t
    t = time.perf_counter()
    records = review(db, campaign)
    timings["review, merge, history"] = time.perf_counter() - t
    t = time.perf_counter()
    rows = [[store._json(r["data"]) if c == "data" else int(r["retired"]) if c == "retired"
             else r[c] for c in store.RECORD_COLUMNS] for _, r in sorted(records.items())]
    for part in chunked(rows):
        with store.write(db):
            insert(db, "records", store.RECORD_COLUMNS, part)
    del rows
    for part in chunked(attempts):
        with store.write(db):
            store.add_invalid_attempts(db, part)
    timings["insert records, invalid attempts"] = time.perf_counter() - t
    if saved:
        t = time.perf_counter()
        with store.write(db):  # the triggers as the migration made them, the figures recounted
            for _, sql in saved:
                db.execute(sql)
            store.recount_monitor(db)
        timings["recreate triggers, recount_monitor"] = time.perf_counter() - t
    return records


COMPARED = {  # the same after a rebuild; a monitor_records row at 0 equals a missing one
    "records": "SELECT * FROM records ORDER BY record_type, key",
    "record_history": "SELECT * FROM record_history ORDER BY seq",
    "monitor_areas": "SELECT * FROM monitor_areas ORDER BY area",
    "monitor_review_times": "SELECT * FROM monitor_review_times ORDER BY 1, 2",
    "monitor_records": "SELECT * FROM monitor_records WHERE active != 0 ORDER BY 1, 2",
    "monitor_workers": "SELECT * FROM monitor_workers ORDER BY 1, 2",
    "monitor_field_errors": "SELECT * FROM monitor_field_errors ORDER BY 1, 2, 3, 4",
}


def verify(path: pathlib.Path) -> float:
    """Rebuild a copy with workflow.rebuild; every table in COMPARED must come out the
    same (the monitor figures: recounted against the triggers'). The rebuild's time."""
    with tempfile.TemporaryDirectory(prefix="make-city-", dir=path.parent) as tmp:
        copy_path = pathlib.Path(tmp) / "copy.db"
        with sqlite3.connect(path) as source, sqlite3.connect(copy_path) as target:
            source.backup(target)
        copy = store.connect(copy_path)
        t = time.perf_counter()
        workflow.rebuild(copy)
        elapsed = time.perf_counter() - t
        original = sqlite3.connect(path)
        for table, sql in COMPARED.items():
            pairs = itertools.zip_longest(original.execute(sql), copy.conn.execute(sql))
            for n, (a, b) in enumerate(pairs):
                if a != b:
                    raise SystemExit(f"--verify: {table} differs after rebuild at row {n}: "
                                     f"{a} != {b}")
        original.close()
        copy.close()
    return elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--houses", type=int, default=400_000)
    parser.add_argument("--orgs", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--grids", type=int, default=11_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample", type=int, default=2000, help="records validated per type")
    parser.add_argument("--verify", action="store_true",
                        help="rebuild a copy and compare records, history, monitor figures")
    parser.add_argument("--triggers", action="store_true",
                        help="keep the monitor triggers on during the load (much slower)")
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists")
    started = time.perf_counter()
    rng = random.Random(args.seed)
    standards = load_standards()
    db = store.connect(args.out)
    db.execute("PRAGMA cache_size = -1000000")  # 1 GB of page cache for the bulk load
    store.migrate(db, at(-30 * 86400))
    grids = make_grids(rng, args.grids)
    write_grids(db, grids)
    users = add_users(db, rng, grids)
    timings = {"grids and users": time.perf_counter() - started}
    t = time.perf_counter()
    campaign = plan(args, rng, standards, grids)
    timings["generate"] = time.perf_counter() - t
    t = time.perf_counter()
    checked = validate_sample(campaign, args.sample)
    attempts = invalid_attempts(campaign)
    timings["validate sample, invalid attempts"] = time.perf_counter() - t
    records = write(db, campaign, attempts, timings, args.triggers)
    t = time.perf_counter()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    timings["checkpoint"] = time.perf_counter() - t
    total = time.perf_counter() - started

    subs = campaign.subs
    kinds = collections.Counter(s.record_type for s in subs)
    states = collections.Counter(s.state for s in subs)
    keyed = [r for r in records.values() if r["record_type"] != "event"]
    updated = sum(r["version"] > 1 for r in keyed)
    print(f"{args.out}: {len(grids):,} grids, {users:,} users, {len(subs):,} submissions "
          f"{dict(sorted(kinds.items()))}")
    print(f"  states {dict(sorted(states.items()))}; {len(attempts):,} invalid attempts "
          f"({len(attempts) / len(subs):.1%})")
    print(f"  {len(records):,} master records ({sum(r['retired'] for r in keyed):,} retired), "
          f"{states['confirmed']:,} history rows; {updated / len(keyed):.1%} of persons, "
          f"houses and organisations have more than one version")
    print(f"  {checked:,} submissions validated against their effective standard: all valid")
    print("  " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    print(f"built in {total:.0f} s ({total / 60:.1f} min); "
          f"{args.out.stat().st_size / 2 ** 20:,.0f} MB")
    if args.verify:
        elapsed = verify(args.out)
        print(f"--verify: workflow.rebuild of a copy took {elapsed:.1f} s and reproduced "
              f"records, history and every monitor table")


if __name__ == "__main__":
    sys.exit(main())
