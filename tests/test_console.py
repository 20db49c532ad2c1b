"""The console over HTTP (Flask's test client): sessions, CSRF, scope, roles, masking,
security headers and escaping on every page. The browser journeys are in
test_console_browser.py."""
import html.parser
import io
import json
import re

import openpyxl
import pytest
from conftest import (GRID_CODE, GRID_FAR, GRID_OTHER, PASSWORD, USERS, event, id_number, item,
                      person, send_and_confirm)

from gridcollect import console

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
ID_NUMBER = re.compile(r"(?<![0-9])[0-9]{17}[0-9X](?![0-9])")
MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
HTML = "<script>alert(document.cookie)</script><img src=x onerror=alert(1)>"


class Browser:
    """A test client signed in to the console as one user; ``csrf`` is its token."""

    def __init__(self, client, username, password=PASSWORD):
        self.client = client
        page = client.get("/console/login")
        token = CSRF.search(page.text).group(1)
        self.signed_in = client.post("/console/login", data={
            "username": username, "password": password, "csrf": token})
        self.csrf = None
        if self.signed_in.status_code == 303:
            self.csrf = CSRF.search(client.get("/console/records").text).group(1)

    def get(self, path, **kw):
        return self.client.get(path, **kw)

    def post(self, path, data=None, csrf=True, **kw):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf", self.csrf)
        return self.client.post(path, data=data, **kw)


@pytest.fixture
def browse(app):
    """``browse("sup")``: a fresh test client (its own cookies) signed in as that user."""
    def sign_in(username, password=PASSWORD):
        return Browser(app.test_client(), username, password)
    return sign_in


def _pending(login, client_id, data=None, record_type="person", grid_code=GRID_CODE,
             worker="w3", **more) -> int:
    result = login(worker).submit(item(client_id, data, record_type=record_type,
                                       grid_code=grid_code, **more)).json["results"][0]
    assert result["status"] == "accepted", result
    return result["id"]


# --- sessions -----------------------------------------------------------------------

def test_the_root_opens_the_console_and_pages_ask_to_sign_in(client):
    assert client.get("/").headers["Location"] == "/console/"
    response = client.get("/console/queue?grid=420502")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/login?next=")
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    assert 'for="username">用户名' in page.text and 'for="password">密码' in page.text


def test_signing_in_sets_a_strict_httponly_cookie_and_opens_the_roles_first_page(app):
    browser = Browser(app.test_client(), "sup")
    assert browser.signed_in.status_code == 303
    assert browser.signed_in.headers["Location"] == "/console/queue"
    cookie = [c for c in browser.signed_in.headers.getlist("Set-Cookie")
              if c.startswith(console.SESSION_COOKIE + "=")][0]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over HTTPS it is Secure
    assert Browser(app.test_client(), "analyst").signed_in.headers["Location"] == \
        "/console/releases"


def test_sign_in_returns_to_the_page_asked_for_but_never_to_another_site(app):
    client = app.test_client()
    token = CSRF.search(client.get("/console/login").text).group(1)
    for target, expected in (("/console/monitor", "/console/monitor"),
                             ("//evil.example/console/", "/console/queue"),
                             ("https://evil.example/", "/console/queue"),
                             ("/console/\\evil", "/console/queue")):
        response = client.post("/console/login", data={
            "username": "sup", "password": PASSWORD, "csrf": token, "next": target})
        assert response.headers["Location"] == expected, target
        token = CSRF.search(client.get("/console/login").text).group(1)


def test_a_wrong_password_is_refused_audited_and_throttled_as_the_api_login_is(app, db):
    client = app.test_client()
    for _ in range(5):
        token = CSRF.search(client.get("/console/login").text).group(1)
        response = client.post("/console/login", data={
            "username": "sup", "password": "wrong password", "csrf": token})
        assert response.status_code == 401
        assert "用户名或密码错误" in response.text
    token = CSRF.search(client.get("/console/login").text).group(1)
    response = client.post("/console/login", data={"username": "sup", "password": PASSWORD,
                                                   "csrf": token})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    # the same lock-out as the API's: one account, one count
    assert client.post("/api/v1/auth/token", json={"username": "sup", "password": PASSWORD}
                       ).status_code == 429
    failures = db.execute("SELECT count(*) FROM audit WHERE action = 'login_failed'"
                          " AND object_id = 'sup'").fetchone()[0]
    assert failures == 5


def test_signing_out_ends_the_session_on_the_server(browse, db):
    browser = browse("sup")
    cookie = browser.client.get_cookie(console.SESSION_COOKIE, path="/console").value
    response = browser.post("/console/logout")
    assert response.status_code == 303 and "signed_out" in response.headers["Location"]
    # the token itself is revoked: the old cookie, sent again, opens nothing
    browser.client.set_cookie(console.SESSION_COOKIE, cookie, path="/console")
    assert browser.get("/console/queue").status_code == 302
    assert browser.client.get("/api/v1/me", headers={"Authorization": f"Bearer {cookie}"}
                              ).status_code == 401


def test_revoking_a_users_tokens_ends_their_console_sessions(browse, login):
    browser = browse("sup")
    assert browser.get("/console/queue").status_code == 200
    assert login("admin").post("/api/v1/users/sup/revoke-tokens").json["revoked"] >= 1
    response = browser.get("/console/queue")
    assert response.status_code == 302 and "expired=1" in response.headers["Location"]


# --- CSRF -----------------------------------------------------------------------------

def test_a_change_without_the_csrf_token_is_refused_and_changes_nothing(browse, login, db):
    sid = _pending(login, "c1")
    browser = browse("sup")
    for data in ({"action": "confirm"}, {"action": "confirm", "csrf": "0" * 64},
                 {"action": "confirm", "csrf": ""}):
        response = browser.post(f"/console/submissions/{sid}/review", data, csrf="csrf" in data)
        assert response.status_code == 403
        assert "表单已过期或来源不明" in response.text
    response = browser.post("/console/queue/review", {"action": "confirm", "id": str(sid)},
                            headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert browse("admin").post("/console/admin/users", {
        "username": "mallory", "role": "admin", "password": "long enough pass"},
        csrf=False).status_code == 403
    assert login("sup").get(f"/api/v1/submissions/{sid}").json["state"] == "pending"
    assert db.execute("SELECT count(*) FROM users WHERE username = 'mallory'").fetchone()[0] == 0


def test_one_users_csrf_token_does_not_work_for_another(browse, login):
    sid = _pending(login, "c2")
    mine, other = browse("sup"), browse("admin")
    response = other.post(f"/console/submissions/{sid}/review",
                          {"action": "confirm", "csrf": mine.csrf})
    assert response.status_code == 403


def test_the_sign_in_form_needs_its_own_token(app):
    client = app.test_client()
    client.get("/console/login")
    response = client.post("/console/login", data={"username": "sup", "password": PASSWORD})
    assert response.status_code == 403


# --- roles and scope ------------------------------------------------------------------

PAGES = {  # page -> roles that may open it
    "/console/queue": {"supervisor", "admin"},
    "/console/moves": {"supervisor", "admin"},
    "/console/monitor": {"supervisor", "admin"},
    "/console/records": {"worker", "supervisor", "analyst", "admin"},
    "/console/releases": {"analyst", "admin"},
    "/console/admin/users": {"admin"},
    "/console/admin/grids": {"admin"},
    "/console/admin/standards": {"admin"},
    "/console/admin/audit": {"admin"},
}


@pytest.mark.parametrize("username", ["w3", "sup", "analyst", "admin"])
def test_each_role_opens_its_pages_and_is_refused_the_others(browse, username):
    browser = browse(username)
    role = USERS[username][0]
    for path, roles in PAGES.items():
        response = browser.get(path)
        assert response.status_code == (200 if role in roles else 403), (path, username)


def test_every_console_view_declares_its_permission(app):
    for endpoint, view in app.view_functions.items():
        if endpoint.startswith("console.") and endpoint not in (
                "console.static", "console.login"):
            assert hasattr(view, "_permission"), endpoint


def test_out_of_scope_objects_are_404_as_missing_ones_are(browse, login):
    far = _pending(login, "far", grid_code=GRID_FAR, worker="wfar",
                   data={k: v for k, v in person(5).items() if k != "house_code"})
    near = _pending(login, "near")
    sup = browse("sup")
    assert sup.get(f"/console/submissions/{near}").status_code == 200
    for path in (f"/console/submissions/{far}", "/console/submissions/999999",
                 f"/console/submissions/{far}/photos/{'0' * 64}",
                 "/console/monitor?under=420502002", "/console/monitor?under=9",
                 "/console/records/person/" + id_number(77), "/console/records/nosuch/1"):
        response = sup.get(path)
        assert response.status_code == 404, path
        assert "不在您的管辖范围内" in response.text
    # reviewing another grid's submission: 404, and it stays pending
    assert sup.post(f"/console/submissions/{far}/review", {"action": "confirm"}
                    ).status_code == 404
    response = sup.post("/console/queue/review", {"action": "confirm", "id": [str(far)]})
    assert "skipped=1" in response.headers["Location"]
    assert login("supfar").get(f"/api/v1/submissions/{far}").json["state"] == "pending"


def test_the_queue_holds_pending_conflict_and_returned_submissions_oldest_first(
        browse, login):
    first = _pending(login, "q1")
    second = _pending(login, "q2", person(2))
    other = _pending(login, "q3", person(3), grid_code=GRID_OTHER, worker="w4")
    event_id = _pending(login, "q4", event(), record_type="event")
    sup = browse("sup")
    sup.post(f"/console/submissions/{second}/review", {"action": "return", "note": "照片不清"})
    page = sup.get("/console/queue").text
    order = [int(n) for n in re.findall(r'name="id" value="([0-9]+)"', page)]
    assert order == [first, second, other, event_id]
    assert re.search(r"<b>3</b> 待审核", page) and re.search(r"<b>1</b> 已退回待更正", page)
    assert re.findall(r'name="id" value="([0-9]+)"',
                      sup.get("/console/queue?order=newest").text)[0] == str(event_id)
    filtered = sup.get(f"/console/queue?grid={GRID_OTHER}").text
    assert re.findall(r'name="id" value="([0-9]+)"', filtered) == [str(other)]
    # full-width digits and stray spaces, as an input method gives them
    wide = GRID_OTHER.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert re.findall(r'name="id" value="([0-9]+)"',
                      sup.get(f"/console/queue?grid=+{wide}+").text) == [str(other)]
    assert re.findall(r'name="id" value="([0-9]+)"',
                      sup.get("/console/queue?record_type=event").text) == [str(event_id)]
    assert re.findall(r'name="id" value="([0-9]+)"',
                      sup.get("/console/queue?worker=w4").text) == [str(other)]
    assert re.findall(r'name="id" value="([0-9]+)"',
                      sup.get("/console/queue?state=returned").text) == [str(second)]
    assert re.findall(r'name="id" value="([0-9]+)"',
                      sup.get("/console/queue?until=2000-01-01").text) == []
    bad = sup.get("/console/queue?grid=12ab&since=2026-13-45")
    assert bad.status_code == 200 and bad.text.count('aria-invalid="true"') == 2
    # once corrected, a returned submission leaves the queue; the correction is in it
    fixed = _pending(login, "q2-fix", person(2), replaces=second)
    order = [int(n) for n in re.findall(r'name="id" value="([0-9]+)"',
                                        sup.get("/console/queue").text)]
    assert second not in order and fixed in order


def test_bulk_review_confirms_many_at_once_and_says_what_it_skipped(browse, login):
    ids = [_pending(login, f"b{n}", person(10 + n)) for n in range(4)]
    sup = browse("sup")
    sup.post(f"/console/submissions/{ids[0]}/review", {"action": "confirm"})
    response = sup.post("/console/queue/review", {"action": "confirm",
                                                  "id": [str(i) for i in ids] + ["x", "１"],
                                                  "back": "/console/queue?record_type=person"})
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/console/queue?record_type=person")
    assert "reviewed=3" in location and "skipped=1" in location
    assert "已处理 3 条；1 条未处理" in sup.get(location).text
    states = [login("sup").get(f"/api/v1/submissions/{i}").json["state"] for i in ids]
    assert states == ["confirmed"] * 4
    # a note is needed to return; nothing selected is said so
    more = _pending(login, "b9", person(19))
    response = sup.post("/console/queue/review", {"action": "return", "id": str(more)})
    assert "problem=note_required" in response.headers["Location"]
    assert login("sup").get(f"/api/v1/submissions/{more}").json["state"] == "pending"
    response = sup.post("/console/queue/review", {"action": "confirm"})
    assert "problem=none_selected" in response.headers["Location"]
    # never somewhere else afterwards
    response = sup.post("/console/queue/review", {"action": "confirm", "id": str(more),
                                                  "back": "https://evil.example/"})
    assert response.headers["Location"].startswith("/console/queue")


def test_a_submission_is_shown_field_by_field_against_its_master_record(browse, login):
    first = send_and_confirm(login, "m1", person(1, phone="13907171234"))
    update = _pending(login, "m2", person(1, phone="13907179999"), base_version=1)
    page = browse("sup").get(f"/console/submissions/{update}").text
    row = re.search(r'<tr class="changed">(.*?)</tr>', page, re.S).group(1)
    assert "联系电话" in row and "13907171234" in row and "13907179999" in row
    assert f'href="/console/submissions/{first}">#{first}</a> w3' in row  # who set it
    assert "1 男" in page  # a code with its meaning
    assert f"#{first}</a> w3" in page  # the record's history
    assert 'class="pin"' not in page  # a person has no location


def test_a_conflict_shows_the_change_in_between_and_can_be_forced(browse, login):
    send_and_confirm(login, "k1", person(1, phone="13907171234"))
    stale = _pending(login, "k2", person(1, phone="13907175555"), base_version=1)
    in_between = send_and_confirm(login, "k3", person(1, phone="13907176666"))
    sup = browse("sup")
    response = sup.post(f"/console/submissions/{stale}/review", {"action": "confirm"})
    assert login("sup").get(f"/api/v1/submissions/{stale}").json["state"] == "conflict"
    page = sup.get(f"/console/submissions/{stale}").text
    assert "提交基于版本 1，其后主记录已变为版本 2" in page
    section = page[page.index('class="conflict"'):page.index('id="fields-h"')]
    assert f">{in_between}</a>" in section and "13907176666" in section
    response = sup.post(f"/console/submissions/{stale}/review", {"action": "confirm",
                                                                 "force": "1"})
    assert "done=confirmed" in response.headers["Location"]
    record = login("sup").get(f"/api/v1/records/person/{id_number(1)}").json
    assert record["data"]["phone"] == "13907175555" and record["version"] == 3


def test_a_location_is_drawn_inside_its_grid(browse, login):
    house = {"house_code": f"{GRID_CODE}-012-01-0302", "address": "演示街道12栋1单元302室",
             "usage": "1", "location": {"lat": 30.70, "lon": 111.29}}
    sid = _pending(login, "loc", house, record_type="house")
    page = browse("sup").get(f"/console/submissions/{sid}").text
    svg = page[page.index('<svg class="map"'):page.index("</svg>")]
    width, height = map(float, re.search(r'viewBox="0 0 ([0-9.]+) ([0-9.]+)"', svg).groups())
    x, y = map(float, re.search(r'<circle cx="([0-9.]+)" cy="([0-9.]+)" r="7"', svg).groups())
    # the grid is 111.28-111.30 by 30.69-30.71: its centre is the middle of the picture
    assert abs(x - width / 2) < 1 and abs(y - height / 2) < 1
    assert 'class="cell"' in svg and "30.7, 111.29" in page


def test_reviewing_one_goes_on_to_the_next_in_the_queue(browse, login):
    first, second = _pending(login, "n1"), _pending(login, "n2", person(2))
    sup = browse("sup")
    page = sup.get(f"/console/submissions/{first}").text
    assert f'name="next" value="{second}"' in page
    response = sup.post(f"/console/submissions/{first}/review", {
        "action": "confirm", "next": str(second), "go_next": "1"})
    assert response.headers["Location"].startswith(f"/console/submissions/{second}?")
    assert sup.get(f"/console/submissions/{second}?done=bogus").status_code == 200
    response = sup.post(f"/console/submissions/{second}/review", {"action": "reject"})
    assert "problem=note_required" in response.headers["Location"]
    assert "驳回和退回必须填写备注" in sup.get(response.headers["Location"]).text


def test_the_grid_a_record_is_in_accepts_or_refuses_its_move(browse, login):
    send_and_confirm(login, "mv1", person(1), worker="wfar", grid_code=GRID_FAR,
                     supervisor="supfar")
    moving = _pending(login, "mv2", person(1, name="李伟"))
    sup = browse("sup")
    sup.post(f"/console/submissions/{moving}/review", {"action": "confirm"})
    assert login("sup").get(f"/api/v1/submissions/{moving}").json["state"] == "awaiting_move"
    assert "没有内容" in sup.get("/console/moves").text  # not sup's to decide
    far = browse("supfar")
    page = far.get("/console/moves").text
    assert f'action="/console/moves/{moving}"' in page and GRID_CODE in page
    response = far.post(f"/console/moves/{moving}", {"action": "refuse"})
    assert "problem=note_required" in response.headers["Location"]
    assert sup.post(f"/console/moves/{moving}", {"action": "accept"}).status_code == 404
    response = far.post(f"/console/moves/{moving}", {"action": "accept"})
    assert "done=accepted" in response.headers["Location"]
    assert "已同意：记录已迁出" in far.get(response.headers["Location"]).text
    record = login("sup").get(f"/api/v1/records/person/{id_number(1)}").json
    assert record["grid_code"] == GRID_CODE and record["data"]["name"] == "李伟"
    again = far.post(f"/console/moves/{moving}", {"action": "refuse", "note": "晚了"})
    assert "problem=decided" in again.headers["Location"]
    assert "该请求已处理或已撤回" in far.get(again.headers["Location"]).text


def test_a_note_with_bidi_controls_is_refused(browse, login):
    sid = _pending(login, "bidi")
    response = browse("sup").post(f"/console/submissions/{sid}/review", {
        "action": "return", "note": "请核对\u202e号码"})
    assert response.status_code == 400
    assert login("sup").get(f"/api/v1/submissions/{sid}").json["state"] == "pending"


def test_photos_are_shown_to_those_who_may_read_the_submission(browse, login):
    sid = _pending(login, "p1")
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"
    photo = login("w3").post(f"/api/v1/submissions/{sid}/photos", data=jpeg,
                             headers={"Content-Type": "image/jpeg"}).json
    page = browse("sup").get(f"/console/submissions/{sid}").text
    url = f"/console/submissions/{sid}/photos/{photo['sha256']}"
    assert f'src="{url}"' in page
    response = browse("sup").get(url)
    assert response.status_code == 200 and response.data == jpeg
    assert "private" in response.headers["Cache-Control"]
    response.close()
    assert browse("supfar").get(url).status_code == 404


# --- security headers, no inline script, escaping ------------------------------------

class Inline(html.parser.HTMLParser):
    """Scripts with content, event-handler attributes, style attributes, javascript:
    URLs: anything a CSP without 'unsafe-inline' would block."""

    def __init__(self):
        super().__init__()
        self.found, self._in_script = [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self._in_script = True
            if "src" not in attrs:
                self.found.append("script without src")
        for name, value in attrs.items():
            if name.startswith("on") or name == "style":
                self.found.append(f"{tag} {name}")
            if name in ("href", "src", "action") and (value or "").strip().lower(
                    ).startswith("javascript:"):
                self.found.append(f"{tag} {name}=javascript:")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.found.append("inline script")


def _every_page(browser, sid, release_id):
    return ["/console/", "/console/login", "/console/queue", "/console/moves",
            f"/console/submissions/{sid}",
            "/console/monitor", "/console/monitor?under=420502001002",
            f"/console/monitor?under={GRID_CODE}", "/console/records",
            "/console/records?type=event", f"/console/records/person/{id_number(1)}",
            "/console/releases", f"/console/releases/{release_id}", "/console/admin/users",
            "/console/admin/users/w3", "/console/admin/grids",
            f"/console/admin/standards?grid={GRID_CODE}", "/console/admin/audit",
            "/console/no-such-page", "/console/submissions/999999"]


# console rules answered with something other than a page, each tested on its own
NOT_PAGES = {"console.static", "console.photo", "console.release_table",
             "console.release_dictionary", "console.logout", "console.review_selected",
             "console.review_one", "console.decide_move"}


def test_every_page_has_the_security_headers_and_no_inline_script(app, browse, login):
    send_and_confirm(login, "h1", person(1))
    sid = _pending(login, "h2", person(1), base_version=1)
    release_id = login("admin").post("/api/v1/releases", json={"note": "周报"}).json["id"]
    admin = browse("admin")
    pages = _every_page(admin, sid, release_id)
    adapter = app.url_map.bind("localhost")
    opened = {adapter.match(path.split("?")[0])[0] for path in pages
              if "no-such" not in path}
    assert {rule.endpoint for rule in app.url_map.iter_rules()
            if rule.endpoint.startswith("console.")} - opened == NOT_PAGES
    for path in pages:
        response = admin.get(path)
        assert response.status_code in (200, 302, 404), path
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store", path
        assert response.mimetype == "text/html" or response.status_code == 302
        parser = Inline()
        parser.feed(response.text)
        assert parser.found == [], (path, parser.found)


def test_pages_are_small(browse, login):
    send_and_confirm(login, "s1", person(1))
    admin = browse("admin")
    for path in ("/console/queue", "/console/monitor", "/console/records",
                 "/console/static/console.css", "/console/static/console.js"):
        response = admin.get(path, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200
        assert len(response.data) < 300_000, path
        response.close()


def test_stored_html_is_shown_escaped_everywhere(browse, login, db):
    from gridcollect import store
    with store.write(db):  # a grid and area named with markup, as a grids file may hold
        store.upsert_grids(db, [(GRID_CODE, HTML, json.dumps({
            "type": "Polygon", "coordinates": [[[111.28, 30.69], [111.30, 30.69],
                                                [111.30, 30.71], [111.28, 30.71],
                                                [111.28, 30.69]]]}))], "2026-12-01")
        store.upsert_area_names(db, {"420502001002": HTML}, "2026-12-01")
    house = {"house_code": f"{GRID_CODE}-012-01-0101", "address": HTML, "usage": "1"}
    send_and_confirm(login, "x1", house, record_type="house")
    event_id = _pending(login, "x2", event(description=HTML), record_type="event")
    sup = browse("sup")
    sup.post(f"/console/submissions/{event_id}/review", {"action": "return", "note": HTML})
    admin = browse("admin")
    for browser, path in ((sup, "/console/queue"), (sup, f"/console/submissions/{event_id}"),
                          (sup, "/console/monitor"), (sup, "/console/monitor?under=420502001002"),
                          (sup, "/console/records?type=house"),
                          (sup, f"/console/records/house/{house['house_code']}"),
                          (admin, "/console/admin/grids")):
        text = browser.get(path).text
        assert "<script>alert" not in text and "<img src=x" not in text, path
        assert "&lt;script&gt;alert" in text, path
    text = admin.get("/console/admin/audit?action=review").text  # the note, as JSON
    assert "<script>alert" not in text and "\\u003cscript\\u003ealert" in text


# --- masking --------------------------------------------------------------------------

def test_a_masked_analyst_sees_no_full_id_number_or_phone_on_any_page(browse, login):
    for n in range(3):
        send_and_confirm(login, f"a{n}", person(n + 1, phone=f"1390717123{n}"))
    release_id = login("analyst").post("/api/v1/releases", json={"note": "月报"}).json["id"]
    analyst = browse("analyst")
    pages = ["/console/records", "/console/records?field=sex&value=1",
             "/console/releases", f"/console/releases/{release_id}",
             f"/console/records?key={id_number(1)}"]
    for path in pages:
        response = analyst.get(path, follow_redirects=True)
        assert response.status_code == 200, path
        assert not ID_NUMBER.search(response.text), path
        assert not MOBILE.search(response.text), path
    text = analyst.get("/console/records").text
    assert id_number(1)[:6] + "********" + id_number(1)[-4:] in text
    # a record page is opened by its key: a masked key opens none
    assert analyst.get(f"/console/records/person/{id_number(1)}").status_code == 404
    # searching a masked field is refused, as in the API
    refused = analyst.get(f"/console/records?field=id_number&value={id_number(1)}",
                          follow_redirects=True)
    assert "已脱敏" in refused.text and not ID_NUMBER.search(refused.text)
    # the CSV and XLSX downloads are masked like the API's
    csv_text = analyst.get(f"/console/releases/{release_id}/tables/person.csv").data.decode()
    assert not ID_NUMBER.search(csv_text) and not MOBILE.search(csv_text)
    book = openpyxl.load_workbook(io.BytesIO(analyst.get(
        f"/console/releases/{release_id}/tables/person.xlsx").data), read_only=True)
    cells = " ".join(str(c) for row in book.active.iter_rows(values_only=True) for c in row)
    assert not ID_NUMBER.search(cells) and not MOBILE.search(cells)


def test_a_supervisor_sees_the_full_values_of_their_grids(browse, login):
    send_and_confirm(login, "u1", person(1, phone="13907171234"))
    text = browse("sup").get(f"/console/records/person/{id_number(1)}").text
    assert id_number(1) in text and "13907171234" in text


# --- releases and administration ------------------------------------------------------

def test_an_analyst_creates_a_release_and_downloads_every_table(browse, login):
    send_and_confirm(login, "r1", person(1))
    analyst = browse("analyst")
    response = analyst.post("/console/releases", {"note": "  十二月数据  "})
    assert response.status_code == 303
    release_id = int(re.search(r"/console/releases/([0-9]+)", response.headers["Location"])[1])
    page = analyst.get(response.headers["Location"]).text
    assert "十二月数据" in page and "数据字典" in page
    for record_type in ("person", "house", "organization", "event"):
        for fmt in ("csv", "json", "xlsx"):
            url = f"/console/releases/{release_id}/tables/{record_type}.{fmt}"
            assert f'href="{url}"' in page
            assert analyst.get(url).status_code == 200
    dictionary = analyst.get(f"/console/releases/{release_id}/dictionary.json")
    assert dictionary.status_code == 200 and "id_number" in {
        c["column"] for c in dictionary.json["tables"]["person"]}
    assert analyst.post("/console/releases", {"note": "   "}).status_code == 400
    assert browse("sup").post("/console/releases", {"note": "x"}).status_code == 403
    audit = login("admin").get("/api/v1/audit?action=export&actor=analyst").json["items"]
    assert len(audit) == 12


def test_an_admin_manages_a_user_from_the_console(browse, login, client):
    admin = browse("admin")
    response = admin.post("/console/admin/users", {
        "username": "w9", "role": "worker", "scope": "４２０５０２００１００２００３",
        "password": "a long new password"})
    assert response.status_code == 303
    assert login("admin").get("/api/v1/users/w9").json["scope"] == [GRID_CODE]
    taken = admin.post("/console/admin/users", {"username": "w9", "role": "worker",
                                                "scope": GRID_CODE,
                                                "password": "a long new password"})
    assert taken.status_code == 400 and "用户名已存在" in taken.text
    weak = admin.post("/console/admin/users", {"username": "w10", "role": "worker",
                                               "scope": GRID_CODE, "password": "12345"})
    assert weak.status_code == 400 and "password" in weak.text
    w9 = browse("w9", "a long new password")
    assert w9.get("/console/records").status_code == 200
    admin.post("/console/admin/users/w9", {"do": "change", "role": "supervisor",
                                           "scope": "420502001", "unmasked": "1"})
    changed = login("admin").get("/api/v1/users/w9").json
    assert changed["role"] == "supervisor" and changed["scope"] == ["420502001"]
    response = admin.post("/console/admin/users/w9", {"do": "revoke"})
    assert "done=revoked" in response.headers["Location"]
    assert w9.get("/console/records").status_code == 302  # signed out
    admin.post("/console/admin/users/w9", {"do": "password", "password": "another long one"})
    assert client.post("/api/v1/auth/token", json={
        "username": "w9", "password": "another long one"}).status_code == 200
    assert admin.get("/console/admin/users/nobody").status_code == 404


def test_an_admin_issues_a_phone_key_with_its_qr_code_and_revokes_it(browse, client):
    admin = browse("admin")
    page = admin.post("/console/admin/users/w3", {"do": "key"})
    assert page.status_code == 200
    url = re.search(r'<p class="mono">(http://localhost/openrosa/key/[^<]+)</p>', page.text)[1]
    assert '<svg' in page.text and "只显示这一次" in page.text
    parser = Inline()
    parser.feed(page.text)
    assert parser.found == []  # the QR code has no style attribute either
    path = url.removeprefix("http://localhost")
    assert client.get(path + "/formList").status_code == 200
    key_id = re.search(r'name="key_id" value="([0-9a-f]{12})"', page.text)[1]
    done = admin.post("/console/admin/users/w3", {"do": "revoke_key", "key_id": key_id})
    assert "done=key_revoked" in done.headers["Location"]
    assert client.get(path + "/formList").status_code == 401
    assert "已撤销" in admin.get("/console/admin/users/w3").text


def test_a_grid_file_with_a_broken_feature_is_refused_whole_with_each_problem(browse, db):
    good = {"type": "Feature", "properties": {"code": "420502003001001", "name": "新网格"},
            "geometry": {"type": "Polygon", "coordinates": [[[111.4, 30.7], [111.42, 30.7],
                                                             [111.42, 30.72], [111.4, 30.7]]]}}
    bad = {"type": "Feature", "properties": {"code": "4205", "name": "坏"}, "geometry": None}
    admin = browse("admin")

    def upload(features, name="grids.geojson"):
        body = json.dumps({"type": "FeatureCollection", "features": features}).encode()
        return admin.post("/console/admin/grids", {"geojson": (io.BytesIO(body), name)},
                          content_type="multipart/form-data")

    response = upload([good, bad])
    assert response.status_code == 400
    assert "文件有 1 处问题，未导入任何内容" in response.text
    assert "grids.geojson: feature 2: properties.code must be a 15-digit grid code" in \
        response.text
    assert db.execute("SELECT count(*) FROM grids WHERE code = '420502003001001'"
                      ).fetchone()[0] == 0
    response = upload([good])
    assert response.status_code == 200 and "1 个网格：新增 1" in response.text
    assert "/tmp" not in upload([bad]).text  # named by the file chosen, not a server path
    # a name that would read otherwise (U+202E reverses what follows) or hides a NUL
    for name in ("网格\u202e区一", "网格\x00"):
        sneaky = {**good, "properties": {"code": "420502003001002", "name": name}}
        response = upload([sneaky])
        assert response.status_code == 400
        assert "properties.name contains control or invisible characters" in response.text


def test_the_effective_standard_of_a_grid_and_the_audit_log(browse, login):
    admin = browse("admin")
    page = admin.get(f"/console/admin/standards?grid={GRID_CODE}").text
    assert "id_number" in page and "公民身份号码" in page
    assert admin.get("/console/admin/standards?grid=abc").status_code == 404
    login("sup")
    audit = admin.get("/console/admin/audit?actor=sup&action=login").text
    assert "login" in audit
    assert admin.get("/console/admin/audit?since=yesterday").text.count(
        'aria-invalid="true"') == 1


# --- languages ------------------------------------------------------------------------

def test_chinese_by_default_english_by_choice_or_browser_preference(browse, login):
    _pending(login, "l1")
    sup = browse("sup")
    assert '<html lang="zh-CN">' in sup.get("/console/queue").text
    english = sup.get("/console/queue?lang=en")
    assert '<html lang="en">' in english.text and "Review queue" in english.text
    assert "Confirm" in english.text and "Reject" in english.text and "Return" in english.text
    assert "Review queue" in sup.get("/console/queue").text  # remembered
    other = browse("sup")
    assert "审核队列" in other.get("/console/queue").text
    assert "Review queue" in other.get("/console/queue", headers={
        "Accept-Language": "en-GB,en;q=0.9"}).text
    assert "审核队列" in other.get("/console/queue", headers={
        "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}).text
    page = sup.get("/console/queue?lang=zh").text
    for word in ("确认", "驳回", "退回"):
        assert f">{word}</button>" in page


def test_every_catalogue_key_used_by_a_template_exists():
    import pathlib

    from gridcollect.console.i18n import CATALOGUE
    folder = pathlib.Path(console.__file__).parent / "templates" / "console"
    used = set()
    for template in folder.glob("*.html"):
        used |= {key for key in re.findall(r't\("([a-z_.0-9]+)"', template.read_text())
                 if not key.endswith(".")}  # "state." ~ state: every state is below
    assert used - set(CATALOGUE) == set()
    from gridcollect.access import ROLES
    from gridcollect.monitor import LEVELS
    from gridcollect.standards import RECORD_TYPES
    from gridcollect.workflow import ACTIONS, STATES
    for prefix, names in (("state.", STATES), ("type.", RECORD_TYPES), ("role.", ROLES),
                          ("action.", ACTIONS), ("monitor.level.", LEVELS)):
        assert {prefix + name for name in names} <= set(CATALOGUE), prefix
    assert all(len(pair) == 2 and all(pair) for pair in CATALOGUE.values())
