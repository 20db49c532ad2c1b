"""OpenRosa as ODK Collect speaks it, over real HTTP against ``python server.py``: the
form list, forms, manifests and their CSV, HEAD and POST of submissions (with and
without photos), re-sends, refusals, a correction of a returned entry, Basic
credentials right and wrong, key URLs issued and revoked."""
import csv
import hashlib
import io
import re
import uuid
import xml.etree.ElementTree as ET

import pytest
import requests
from live import PASSWORD, Phone, Server, cli, log_problems, make_city

from conftest import GRID_CODE, GRID_FAR, id_number, item, person

NS = {"x": "http://openrosa.org/xforms/xformsList",
      "m": "http://openrosa.org/xforms/xformsManifest",
      "r": "http://openrosa.org/http/response", "f": "http://www.w3.org/2002/xforms"}
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("openrosa")
    db = make_city(folder)
    running = Server(db, folder / "server.log", workers=2)
    running.db = db
    running.base = running.url.removesuffix("/api/v1")
    yield running
    running.stop()
    assert log_problems(folder / "server.log") == []


class Collect:
    """What ODK Collect does: every request with the OpenRosa header, answered to a
    401 challenge with Basic credentials (or none, under a key URL)."""

    def __init__(self, base, username=None, password=PASSWORD):
        self.base = base
        self.session = requests.Session()
        self.session.headers["X-OpenRosa-Version"] = "1.0"
        if username:
            self.session.auth = (username, password)

    def get(self, url, **kw):
        return self.session.get(url if url.startswith("http") else self.base + url,
                                timeout=60, **kw)

    def forms(self, path="/openrosa/formList") -> dict:
        response = self.get(path)
        assert response.status_code == 200, response.text
        assert response.headers["X-OpenRosa-Version"] == "1.0"
        root = ET.fromstring(response.content)
        return {x.findtext("x:formID", namespaces=NS): {
            child.tag.split("}")[1]: child.text for child in x} for x in root}

    def send(self, xml: str, photos=(), url=None):
        files = [("xml_submission_file", ("submission.xml", xml.encode(), "text/xml"))]
        files += [(name, (name, content, "image/jpeg")) for name, content in photos]
        return self.session.post(url or self.base + "/openrosa/submission", files=files,
                                 timeout=60)


def instance(record_type, data: dict, instance_id=None, base_version="", photo="",
             grid=GRID_CODE) -> str:
    """A filled-in form as Collect sends it (the element order of the XForm)."""
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in data.items())
    return (f'<data xmlns:jr="http://openrosa.org/javarosa" id="{record_type}-{grid}" '
            f'version="x"><gc_start>2026-12-02T09:00:00.000+08:00</gc_start>'
            f"<gc_end>2026-12-02T09:04:00.000+08:00</gc_end>{fields}"
            f"<gc_base_version>{base_version}</gc_base_version><gc_photo>{photo}</gc_photo>"
            f"<meta><instanceID>{instance_id or 'uuid:' + str(uuid.uuid4())}</instanceID>"
            f"</meta></data>")


def _message(response) -> str:
    return ET.fromstring(response.content).findtext("r:message", namespaces=NS)


def test_the_form_list_the_forms_and_their_manifests(server):
    anonymous = Collect(server.base)
    refused = anonymous.get("/openrosa/formList")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Basic ")
    assert refused.headers["X-OpenRosa-Version"] == "1.0"
    collect = Collect(server.base, "w3")
    forms = collect.forms()
    assert set(forms) == {f"{t}-{GRID_CODE}" for t in ("person", "house", "organization",
                                                       "event")}
    person_form = forms[f"person-{GRID_CODE}"]
    assert person_form["version"] == "2026.1+420502001002.1"  # with the overlay's
    assert person_form["name"].startswith("实有人口")
    download = collect.get(person_form["downloadUrl"])
    assert download.status_code == 200 and download.headers["Content-Type"].startswith(
        "text/xml")
    assert person_form["hash"] == "md5:" + hashlib.md5(download.content).hexdigest()
    form = ET.fromstring(download.content)
    assert form.find(".//f:instance/f:data", NS).get("id") == f"person-{GRID_CODE}"
    languages = {t.get("lang") for t in form.iter("{http://www.w3.org/2002/xforms}translation")}
    assert languages == {"中文 (zh)", "English (en)"}
    binds = {b.get("nodeset"): b for b in form.iter("{http://www.w3.org/2002/xforms}bind")}
    assert binds["/data/id_number"].get("required") == "true()"
    assert "mod 11" in binds["/data/id_number"].get("constraint")
    assert binds["/data/phone"].get("required") == "true()"  # the community's overlay
    assert "pulldata('records'" in binds["/data/gc_base_version"].get("calculate")
    # the grid's master records, for the look-up of the record to update
    Phone(server.url, "w3").post("/submissions", json={"submissions": [
        item("or-seed", person(901))]})
    sid = Phone(server.url, "w3").get("/submissions?limit=1").json()["items"][0]["id"]
    Phone(server.url, "sup").post(f"/submissions/{sid}/review", json={"action": "confirm"})
    manifest = ET.fromstring(collect.get(person_form["manifestUrl"]).content)
    media = manifest.find("m:mediaFile", NS)
    assert media.findtext("m:filename", namespaces=NS) == "records.csv"
    records_csv = collect.get(media.findtext("m:downloadUrl", namespaces=NS))
    assert media.findtext("m:hash", namespaces=NS) == \
        "md5:" + hashlib.md5(records_csv.content).hexdigest()
    rows = list(csv.DictReader(io.StringIO(records_csv.text)))
    assert {"key": id_number(901), "version": "1"} in rows
    # another grid's forms are not offered, nor served
    assert collect.get(f"/openrosa/forms/person-{GRID_FAR}.xml").status_code == 404
    assert collect.get("/openrosa/forms/nonsense.xml").status_code == 404
    # a supervisor does not collect
    assert Collect(server.base, "sup").get("/openrosa/formList").status_code == 403


def test_a_submission_with_a_photo_is_stored_once_and_reviewed_like_any(server):
    collect = Collect(server.base, "w3")
    assert (head := collect.session.head(server.base + "/openrosa/submission",
                                          timeout=30)).status_code == 204
    assert int(head.headers["X-OpenRosa-Accept-Content-Length"]) >= 10 * 1024 * 1024
    house = {"house_code": f"{GRID_CODE}-031-01-0502", "address": "演示路31号1单元502室",
             "usage": "1", "area": "88.5", "floor": "5", "total_floors": "7",
             "location": "30.7 111.29 0 5"}
    instance_id = "uuid:" + str(uuid.uuid4())
    xml = instance("house", house, instance_id, photo="1733.jpg")
    broken = collect.send(xml, photos=[("1733.jpg", JPEG[:-2])])  # cut off in transit
    assert broken.status_code == 400 and "1733.jpg" in _message(broken)
    sent = collect.send(xml, photos=[("1733.jpg", JPEG)])  # nothing was stored: sent again
    assert sent.status_code == 201, sent.text
    assert "已收到" in _message(sent)
    again = collect.send(xml, photos=[("1733.jpg", JPEG)])  # the answer was lost: re-sent
    assert again.status_code == 201 and "此前已收到" in _message(again)
    other = collect.send(instance("house", {**house, "floor": "6"}, instance_id))
    assert other.status_code == 409 and "instanceID" in _message(other)
    api = Phone(server.url, "w3")
    mine = [s for s in api.get("/submissions?limit=100").json()["items"]
            if s["client_id"] == instance_id]
    assert len(mine) == 1
    stored = mine[0]
    assert stored["record_type"] == "house" and stored["state"] == "pending"
    assert stored["data"]["floor"] == 5 and stored["data"]["area"] == 88.5
    assert stored["data"]["location"] == {"lat": 30.7, "lon": 111.29}
    assert stored["collected_at"] == "2026-12-02T09:04:00.000+08:00"
    assert [p["sha256"] for p in stored["photos"]] == [hashlib.sha256(JPEG).hexdigest()]
    review = Phone(server.url, "sup").post(f"/submissions/{stored['id']}/review",
                                           json={"action": "confirm"})
    assert review.json()["state"] == "confirmed"
    audit = Phone(server.url, "admin").get(f"/audit?object_id={stored['id']}").json()
    assert {"submit", "photo_add", "review"} <= {e["action"] for e in audit["items"]}


def test_a_refused_record_answers_400_naming_its_fields(server):
    collect = Collect(server.base, "w3")
    bad = person(902)
    bad["id_number"] = bad["id_number"][:-1] + ("0" if bad["id_number"][-1] != "0" else "1")
    del bad["name"]
    response = collect.send(instance("person", bad))
    assert response.status_code == 400
    text = _message(response)
    assert "公民身份号码校验位错误" in text and "姓名为必填项" in text
    assert "Citizen ID number: check character is wrong" in text
    for broken, reason in ((b"<data", "cannot be read"),
                           (b'<data id="other-form"><meta><instanceID>u</instanceID></meta>'
                            b"</data>", "not a gridcollect form"),
                           (b'<!DOCTYPE d [<!ENTITY a "aaaa">]><data id="x">&a;</data>',
                            "cannot be read")):
        response = collect.session.post(server.base + "/openrosa/submission", files=[
            ("xml_submission_file", ("s.xml", broken, "text/xml"))], timeout=30)
        assert response.status_code == 400 and reason in _message(response), broken
    no_file = collect.session.post(server.base + "/openrosa/submission",
                                   files=[("other", ("a", b"x"))], timeout=30)
    assert no_file.status_code == 400 and "xml_submission_file" in _message(no_file)
    elsewhere = collect.send(instance("person", person(903), grid=GRID_FAR))
    assert elsewhere.status_code == 403


def test_a_returned_entry_is_corrected_by_sending_the_form_again(server):
    collect = Collect(server.base, "w3")
    first = "uuid:" + str(uuid.uuid4())
    assert collect.send(instance("person", person(904, phone="13907179999"), first)
                        ).status_code == 201
    api = Phone(server.url, "w3")
    original = [s for s in api.get("/submissions?limit=100").json()["items"]
                if s["client_id"] == first][0]
    Phone(server.url, "sup").post(f"/submissions/{original['id']}/review",
                                  json={"action": "return", "note": "电话号码有误"})
    fixed = "uuid:" + str(uuid.uuid4())
    assert collect.send(instance("person", person(904, phone="13907171234"), fixed)
                        ).status_code == 201
    correction = [s for s in api.get("/submissions?limit=100").json()["items"]
                  if s["client_id"] == fixed][0]
    assert correction["replaces"] == original["id"]
    assert api.get(f"/submissions/{original['id']}").json()["replaced_by"] == correction["id"]


def test_the_base_version_from_the_look_up_makes_a_stale_edit_a_conflict(server):
    collect = Collect(server.base, "w3")
    Phone(server.url, "w3").post("/submissions", json={"submissions": [
        item("or-base", person(905))]})
    sid = Phone(server.url, "w3").get("/submissions?limit=1").json()["items"][0]["id"]
    Phone(server.url, "sup").post(f"/submissions/{sid}/review", json={"action": "confirm"})
    edit = "uuid:" + str(uuid.uuid4())
    assert collect.send(instance("person", person(905, phone="13907170905"), edit,
                                 base_version="0")).status_code == 201
    stored = [s for s in Phone(server.url, "w3").get("/submissions?limit=100").json()["items"]
              if s["client_id"] == edit][0]
    assert stored["base_version"] == 0
    review = Phone(server.url, "sup").post(f"/submissions/{stored['id']}/review",
                                           json={"action": "confirm"})
    assert review.json()["state"] == "conflict"


def test_credentials_wrong_revoked_and_key_urls(server):
    wrong = Collect(server.base, "w3", password="not the password")
    response = wrong.get("/openrosa/formList")
    assert response.status_code == 401 and "用户名或密码错误" in _message(response)
    for header in ("Basic !!!", "Bearer abc", "Basic " + "eA=="):
        assert requests.get(server.base + "/openrosa/formList", timeout=30,
                            headers={"Authorization": header}).status_code == 401
    issued = cli("keys", "issue", "w3", "--url", server.base, db=server.db)
    url = re.search(r"^(http\S+/openrosa/key/\S+)$", issued, re.M)[1]
    key_id = re.search(r"key ([0-9a-f]{12})", issued)[1]
    keyed = Collect(url)  # no password: the URL is the credential
    forms = keyed.forms("/formList")
    assert forms[f"event-{GRID_CODE}"]["downloadUrl"].startswith(url + "/forms/")
    assert keyed.get(forms[f"event-{GRID_CODE}"]["downloadUrl"]).status_code == 200
    event_xml = instance("event", {"event_type": "02", "description": "楼道堆放杂物，消防隐患",
                                   "occurred_at": "2026-12-02T08:30:00.000+08:00",
                                   "location": "30.70 111.29 0 4"})
    assert keyed.send(event_xml, url=url + "/submission").status_code == 201
    assert key_id in cli("keys", "list", "w3", db=server.db)
    cli("keys", "revoke", "w3", key_id, db=server.db)
    revoked = keyed.get("/formList")
    assert revoked.status_code == 401 and "已失效" in _message(revoked)
    assert requests.get(server.base + "/openrosa/key/forged/formList",
                        timeout=30).status_code == 401
    # the admin API issues keys too, with the settings for Collect's QR code
    admin = Phone(server.url, "admin")
    made = admin.post("/users/w3/openrosa-keys", json={"days": 30})
    assert made.status_code == 201
    from gridcollect.openrosa.keys import read_settings
    assert read_settings(made.json()["collect_settings"])["general"]["server_url"] == \
        made.json()["url"]
    assert Collect(made.json()["url"]).get("/formList").status_code == 200
    assert admin.session.delete(f"{server.url}/users/w3/openrosa-keys/"
                                f"{made.json()['key_id']}", timeout=30).status_code == 204
    assert Collect(made.json()["url"]).get("/formList").status_code == 401
    # a key is no session, and a session no key
    key = made.json()["url"].rsplit("/", 1)[1]
    fresh = admin.post("/users/w3/openrosa-keys", json={}).json()
    fresh_key = fresh["url"].rsplit("/", 1)[1]
    assert requests.get(server.url + "/me", headers={"Authorization": f"Bearer {fresh_key}"},
                        timeout=30).status_code == 401
    console = requests.get(server.base + "/console/records", allow_redirects=False,
                           cookies={"gc_session": fresh_key}, timeout=30)
    assert console.status_code == 302 and "/console/login" in console.headers["Location"]
    session_token = Phone(server.url, "w3").token
    assert requests.get(f"{server.base}/openrosa/key/{session_token}/formList",
                        timeout=30).status_code == 401
    # and no key reaches the server's log
    log = (server.log_path).read_text(errors="replace")
    assert "/openrosa/key/*/formList" in log
    assert key not in log and fresh_key not in log
    refused = admin.post("/users/sup/openrosa-keys", json={})
    assert refused.status_code == 422 and "keys are for workers" in refused.json()["message"]


def test_every_openrosa_answer_has_the_security_headers(server):
    collect = Collect(server.base, "w3")
    answers = [collect.get("/openrosa/formList"), Collect(server.base).get("/openrosa/formList"),
               collect.get(f"/openrosa/forms/person-{GRID_CODE}.xml"),
               collect.get(f"/openrosa/forms/person-{GRID_CODE}/manifest"),
               collect.get(f"/openrosa/forms/person-{GRID_CODE}/records.csv"),
               collect.get(f"/openrosa/forms/person-{GRID_FAR}.xml"),
               collect.session.head(server.base + "/openrosa/submission", timeout=30),
               collect.send("<not xml")]
    for response in answers:
        headers = response.headers
        assert headers["X-OpenRosa-Version"] == "1.0", response.url
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert headers["Cache-Control"] == "no-store"


def test_a_key_in_a_url_is_never_logged():
    from gridcollect.logs import request_target
    assert request_target("/openrosa/key/AbC-d_9/forms/person-420502001002003.xml") == \
        "/openrosa/key/*/forms/person-420502001002003.xml"
    assert request_target("/openrosa/key/AbC?x=1") == "/openrosa/key/*?x=*"
