"""The console as people use it: real Chromium (Debian's package, driven by Playwright)
against ``python server.py`` on a real SQLite file. One test per user story; controls
are found by their visible labels and roles. Screenshots go to a temporary folder, or
to ``$GRIDCOLLECT_SCREENSHOTS`` (the README's come from ``docs/screenshots``)."""
import csv
import io
import json
import os
import pathlib
import re
import shutil

import openpyxl
import pytest
from live import PASSWORD, Phone, Server, log_problems, make_city
from playwright.sync_api import expect, sync_playwright

from conftest import GRID_CODE, GRID_FAR, GRID_OTHER, event, id_number, item, person

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ID_NUMBER = re.compile(r"(?<![0-9])[0-9]{17}[0-9X](?![0-9])")
MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
HTML = "<script>window.__pwned=1;alert(1)</script><img src=x onerror=\"window.__pwned=2\">"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("console")
    running = Server(make_city(folder), folder / "server.log", workers=2)
    yield running
    running.stop()
    assert log_problems(folder / "server.log") == []


@pytest.fixture(scope="module")
def chromium():
    if not os.path.exists(CHROMIUM):
        message = "Debian's chromium is needed: apt-get install chromium fonts-wqy-microhei"
        if os.environ.get("CI"):  # .ci/run installs it: there the journeys always run
            pytest.fail(message)
        pytest.skip(message + " (CI runs these tests always)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = pathlib.Path(os.environ.get("GRIDCOLLECT_SCREENSHOTS")
                          or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Person:
    """One person at the console: a browser context of their own (cookies, language)."""

    def __init__(self, chromium, server, locale="zh-CN", viewport=(1280, 860)):
        self.base = server.url.removesuffix("/api/v1")
        self.context = chromium.new_context(locale=locale, accept_downloads=True,
                                            viewport={"width": viewport[0],
                                                      "height": viewport[1]})
        self.page = self.context.new_page()
        self.dialogs, self.errors = [], []
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.accept()

    def sign_in(self, username, labels=("用户名", "密码", "登录")):
        page = self.page
        page.goto(self.base + "/")
        page.get_by_label(labels[0]).fill(username)
        page.get_by_label(labels[1]).fill(PASSWORD)
        page.get_by_role("button", name=labels[2]).click()
        page.wait_for_load_state()
        assert "/console/login" not in page.url, page.content()[:2000]
        return page

    def goto(self, path):
        self.page.goto(self.base + path)
        return self.page

    def close(self):
        assert self.errors == []
        self.context.close()


@pytest.fixture
def person_at(chromium, server):
    opened = []

    def open_for(**kw):
        opened.append(Person(chromium, server, **kw))
        return opened[-1]

    yield open_for
    for one in opened:
        one.close()


def _send(server, worker, *items) -> list:
    results = Phone(server.url, worker).post("/submissions", json={
        "submissions": list(items)}).json()["results"]
    assert all(r["status"] == "accepted" for r in results), results
    return [r["id"] for r in results]


def _state(server, submission_id, who="sup"):
    return Phone(server.url, who).get(f"/submissions/{submission_id}").json()


def _review(server, submission_id, action="confirm", **more):
    response = Phone(server.url, "sup").post(f"/submissions/{submission_id}/review",
                                             json={"action": action, **more})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_supervisor_works_through_the_queue(server, person_at, shots):
    # a confirmed record, an update of it, three new people, and a conflict
    [first] = _send(server, "w3", item("s-1", person(101, phone="13907171234")))
    _review(server, first)
    [update] = _send(server, "w3", item("s-2", person(101, phone="13907179999"),
                                        base_version=1))
    new = _send(server, "w3", *[item(f"s-n{n}", person(110 + n)) for n in range(3)])
    [base] = _send(server, "w3", item("s-k1", person(120, phone="13907170001")))
    _review(server, base)
    [stale] = _send(server, "w3", item("s-k2", person(120, phone="13907170002"),
                                       base_version=1))
    [between] = _send(server, "w3", item("s-k3", person(120, phone="13907170003")))
    _review(server, between)
    assert _review(server, stale)["state"] == "conflict"
    [elsewhere] = _send(server, "w4", item("s-o", person(130), grid_code=GRID_OTHER))

    supervisor = person_at()
    page = supervisor.sign_in("sup")
    expect(page.get_by_role("heading", name="审核队列")).to_be_visible()
    # filter by grid and type: the other grid's entry is gone
    page.get_by_label("网格编码前缀").fill(GRID_CODE)
    page.get_by_label("记录类型").select_option("person")
    page.get_by_role("button", name="筛选").click()
    expect(page.get_by_role("link", name=str(update), exact=True)).to_be_visible()
    expect(page.get_by_role("link", name=str(elsewhere), exact=True)).to_have_count(0)
    page.screenshot(path=shots / "queue.png", full_page=True)

    # an entry against its master record: current value, who set it, proposed value
    page.get_by_role("link", name=str(update), exact=True).click()
    expect(page.get_by_role("heading", name=f"提交 {update}")).to_be_visible()
    changed = page.locator("tr.changed")
    expect(changed).to_have_count(1)
    expect(changed).to_contain_text("联系电话")
    expect(changed).to_contain_text("13907171234")
    expect(changed).to_contain_text("13907179999")
    expect(changed).to_contain_text(f"#{first}")
    page.screenshot(path=shots / "submission.png", full_page=True)

    # returned with a note, which the worker reads
    page.get_by_label("备注").fill("联系电话与户籍登记不符，请核实")
    page.get_by_label("审核后打开队列中的下一条").uncheck()
    page.get_by_role("button", name="退回").click()
    expect(page.get_by_role("status")).to_contain_text("已退回待更正")
    returned = _state(server, update, "w3")
    assert returned["state"] == "returned"
    assert returned["review"]["note"] == "联系电话与户籍登记不符，请核实"

    # three confirmed at once, keyboard and mouse
    supervisor.goto(f"/console/queue?grid={GRID_CODE}&state=pending")
    page.get_by_label(f"选择提交 {new[0]}").check()
    page.keyboard.press("Escape")
    page.locator("body").click(position={"x": 5, "y": 5})
    rows = page.locator("table.queue tbody tr")
    index = [rows.nth(i).locator("a").first.inner_text() for i in range(rows.count())]
    for _ in range(index.index(str(new[1])) + 1):
        page.keyboard.press("j")
    page.keyboard.press("x")
    assert page.get_by_label(f"选择提交 {new[1]}").is_checked()
    page.get_by_label(f"选择提交 {new[2]}").check()
    page.get_by_role("button", name="确认").click()
    expect(page.get_by_role("status")).to_contain_text("已处理 3 条；0 条未处理")
    assert supervisor.dialogs == ["确认 × 3?"]
    assert [_state(server, i)["state"] for i in new] == ["confirmed"] * 3

    # the conflict: the change in between is shown; forced, it lands on top of it
    supervisor.goto(f"/console/submissions/{stale}")
    expect(page.get_by_role("heading", name="中间落地的变更")).to_be_visible()
    expect(page.locator("section.conflict")).to_contain_text("13907170003")
    page.get_by_role("button", name="强制确认（覆盖中间的变更）").click()
    expect(page.get_by_role("status")).to_contain_text("已确认")
    record = Phone(server.url, "sup").get(f"/records/person/{id_number(120)}").json()
    assert record["data"]["phone"] == "13907170002" and record["version"] == 3


def test_the_monitor_drills_down_with_a_map_and_charts(server, person_at, shots):
    _send(server, "w3", item("m-1", person(201)), item("m-2", person(202)))
    _send(server, "wfar", item("m-3", person(203), grid_code=GRID_FAR))
    phone = Phone(server.url, "w3")
    phone.post("/submissions", json={"submissions": [item("m-bad", person(
        204, id_number=id_number(204)[:-1] + "0", birth_date="1980-02-30"))]})
    admin = person_at()
    page = admin.sign_in("admin")
    admin.goto("/console/monitor")
    expect(page.get_by_role("heading", name="区县")).to_be_visible()
    cells = page.locator("svg.map path.cell")
    expect(cells).to_have_count(3)
    # the grid with entries waiting is coloured, an idle one is not
    fills = {cells.nth(i).locator("title").text_content().split()[0]:
             cells.nth(i).get_attribute("fill") for i in range(3)}
    assert fills[GRID_CODE] != "#e8efe6" and fills[GRID_FAR] != "#e8efe6"
    expect(page.locator("svg.chart rect")).not_to_have_count(0)
    expect(page.locator("table.bars")).to_contain_text("birth_date")
    # district -> street -> community -> grid
    for code in ("420502", "420502001", "420502001002", GRID_CODE):
        page.get_by_role("link", name=code, exact=True).first.click()
        expect(page.locator("h1 small")).to_have_text(code)
    expect(page.locator("dl.figures")).to_contain_text("待审核")
    admin.goto("/console/monitor?under=420502001&colour=oldest")
    expect(page.get_by_role("link", name="最早待审核的等待时长")).to_have_attribute(
        "aria-current", "true")
    page.screenshot(path=shots / "monitor.png", full_page=True)


def test_an_analyst_releases_and_downloads_csv_and_xlsx_in_english(server, person_at, shots,
                                                                   tmp_path):
    [sid] = _send(server, "w3", item("r-1", person(301, phone="13907173011")))
    _review(server, sid)
    analyst = person_at(locale="en-US")
    page = analyst.sign_in("analyst", labels=("Username", "Password", "Sign in"))
    expect(page.get_by_role("heading", name="Releases")).to_be_visible()
    page.get_by_label("Release note").fill("December figures for the civil affairs bureau")
    page.get_by_role("button", name="Create a release").click()
    expect(page.get_by_role("status")).to_contain_text("created")
    page.screenshot(path=shots / "release.png", full_page=True)

    with page.expect_download() as download:
        page.get_by_role("link", name="person.csv", exact=True).click()
    path = tmp_path / "person.csv"
    download.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    mine = [r for r in rows if r["id_number"].endswith(id_number(301)[-4:])]
    assert len(mine) == 1
    assert mine[0]["id_number"] == id_number(301)[:6] + "********" + id_number(301)[-4:]
    assert mine[0]["phone"] == "139****3011"

    with page.expect_download() as download:
        page.get_by_role("link", name="person.xlsx", exact=True).click()
    download.value.save_as(tmp_path / "person.xlsx")
    sheet = openpyxl.load_workbook(tmp_path / "person.xlsx", read_only=True).active
    table = list(sheet.iter_rows(values_only=True))
    assert table[0][:2] == tuple(list(rows[0])[:2])
    assert len(table) == len(rows) + 1
    cells = " ".join(str(c) for row in table for c in row)
    assert not ID_NUMBER.search(cells) and not MOBILE.search(cells)

    # no page an analyst opens carries a full ID number or phone
    for path_ in ("/console/records", "/console/records?type=person&field=sex&value=1",
                  "/console/releases"):
        analyst.goto(path_)
        html = page.content()
        assert not ID_NUMBER.search(html) and not MOBILE.search(html), path_
        assert not ID_NUMBER.search(page.url)
    # and the language switch goes back to Chinese
    page.get_by_role("link", name="中文").click()
    expect(page.get_by_role("heading", name="数据发布")).to_be_visible()


def test_an_admin_adds_a_user_and_uploads_a_grid_file_with_a_broken_feature(
        server, person_at, shots, tmp_path):
    admin = person_at()
    page = admin.sign_in("admin")
    admin.goto("/console/admin/users")
    page.get_by_label("用户名").fill("w7")
    page.get_by_label("角色").select_option("worker")
    page.get_by_label("管辖范围（网格编码前缀，空格分隔）").fill(GRID_OTHER)
    page.get_by_label("初始密码").fill("a new worker's password")
    page.get_by_role("button", name="添加用户").click()
    expect(page.get_by_role("status")).to_contain_text("用户 w7 已添加")
    assert Phone(server.url, "w7", password="a new worker's password").get(
        "/me").json()["scope"] == [GRID_OTHER]
    # a key for ODK Collect, its QR code shown once
    page.get_by_role("button", name="签发新密钥（二维码）").click()
    expect(page.get_by_role("img", name="ODK Collect 设置二维码")).to_be_visible()
    url = page.locator("section.card p.mono").inner_text()
    assert "/openrosa/key/" in url
    page.screenshot(path=shots / "key.png", full_page=True)
    import requests
    assert requests.get(url + "/formList", timeout=30).status_code == 200

    good = {"type": "Feature", "properties": {"code": "420502003001001", "name": "新建网格"},
            "geometry": {"type": "Polygon", "coordinates": [[
                [111.4, 30.7], [111.42, 30.7], [111.42, 30.72], [111.4, 30.72],
                [111.4, 30.7]]]}}
    broken = {"type": "Feature", "properties": {"code": "420502003001002", "name": "坏网格"},
              "geometry": {"type": "Polygon", "coordinates": [[
                  [111.4, 30.7], [111.42, 30.72], [111.42, 30.7], [111.4, 30.72],
                  [111.4, 30.7]]]}}  # crosses itself
    file = tmp_path / "新网格.geojson"
    file.write_text(json.dumps({"type": "FeatureCollection", "features": [good, broken]}),
                    encoding="utf-8")
    admin.goto("/console/admin/grids")
    page.get_by_label("GeoJSON 文件").set_input_files(file)
    page.get_by_role("button", name="上传网格 GeoJSON 文件").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("文件有 1 处问题，未导入任何内容")
    expect(alert).to_contain_text("新网格.geojson: feature 2 (420502003001002): invalid "
                                  "geometry")
    page.screenshot(path=shots / "grids.png", full_page=True)
    assert Phone(server.url, "admin").get("/grids/420502003001001").status_code == 404
    file.write_text(json.dumps({"type": "FeatureCollection", "features": [good]}),
                    encoding="utf-8")
    page.get_by_label("GeoJSON 文件").set_input_files(file)
    page.get_by_role("button", name="上传网格 GeoJSON 文件").click()
    expect(page.get_by_role("status")).to_contain_text("1 个网格：新增 1")
    assert Phone(server.url, "admin").get("/grids/420502003001001").status_code == 200


def test_stored_markup_is_shown_as_text_and_never_runs(server, person_at):
    house = {"house_code": f"{GRID_CODE}-020-01-0101", "address": HTML, "usage": "1"}
    [house_id] = _send(server, "w3", item("x-h", house, record_type="house"))
    _review(server, house_id)
    [event_id] = _send(server, "w3", item("x-e", event(description=HTML),
                                          record_type="event"))
    supervisor = person_at()
    page = supervisor.sign_in("sup")
    for path in ("/console/queue?record_type=event", f"/console/submissions/{event_id}",
                 "/console/records?type=house",
                 f"/console/records/house/{house['house_code']}"):
        supervisor.goto(path)
        expect(page.get_by_text("<script>window.__pwned=1;").first).to_be_visible()
        assert page.evaluate("window.__pwned") is None, path
    assert supervisor.dialogs == []


def test_a_form_posted_from_another_site_changes_nothing(server, person_at, tmp_path):
    [sid] = _send(server, "w3", item("csrf-1", person(401)))
    supervisor = person_at()
    page = supervisor.sign_in("sup")
    # a page elsewhere (here a file) that posts to the console with the user's cookie
    evil = tmp_path / "evil.html"
    evil.write_text(f'<form method="post" action="{supervisor.base}/console/submissions/'
                    f'{sid}/review"><input name="action" value="confirm">'
                    f'<button>win a prize</button></form>', encoding="utf-8")
    page.goto(evil.as_uri())
    page.get_by_role("button", name="win a prize").click()
    page.wait_for_load_state()
    assert "/console/login" in page.url or "表单已过期" in page.content()
    assert _state(server, sid)["state"] == "pending"
    # from the console itself, without the token: refused too
    supervisor.goto("/console/queue")
    status = page.evaluate(f"""async () => (await fetch("/console/submissions/{sid}/review",
        {{method: "POST", body: new URLSearchParams({{action: "confirm"}})}})).status""")
    assert status == 403
    assert _state(server, sid)["state"] == "pending"


def test_a_sign_in_page_on_a_phone_sized_screen(server, person_at, shots):
    visitor = person_at(viewport=(390, 780))
    visitor.goto("/console/login")
    visitor.page.screenshot(path=shots / "login.png")
    width = visitor.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing to scroll sideways
