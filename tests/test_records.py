"""The records API: scope, masking per role and sensitivity (SPEC.md section 4),
field-value filters, changed_since and paging."""
import pytest
from conftest import FAST_HASH, GRID_CODE, GRID_FAR, PASSWORD, id_number, person, send_and_confirm

from gridcollect import accounts

KEY = id_number(1)


def house(room="0302", usage="1", **more):
    return {"house_code": f"{GRID_CODE}-012-01-{room}", "address": "西陵区夷陵大道 12 号",
            "usage": usage, **more}


@pytest.fixture
def merged(login):
    send_and_confirm(login, "p1", person(1, special_groups=["独居老人"], birth_date="1980-01-01"))
    send_and_confirm(login, "p2", person(2, name="欧阳娜娜"))
    send_and_confirm(login, "h1", house("0101", "2"), record_type="house")
    send_and_confirm(login, "h2", house("0102", "1"), record_type="house")
    send_and_confirm(login, "h3", house("0103", "2", owner_name="刘强"), record_type="house")


@pytest.fixture
def unmasked_analyst(db, login):
    accounts.add_user(db, "test", "analyst2", "analyst", ["420502"], PASSWORD, unmasked=True,
                      scrypt_n=FAST_HASH)
    return login("analyst2")


def test_workers_supervisors_and_admins_see_every_field(merged, login):
    for username in ("w3", "sup", "admin"):
        record = login(username).get(f"/api/v1/records/person/{KEY}").json["data"]
        assert record == person(1, special_groups=["独居老人"]), username


def test_a_masked_analyst_sees_personal_fields_masked_and_no_secret_ones(merged, login):
    items = login("analyst").get("/api/v1/records/person").json["items"]
    first = next(r for r in items if r["key"].endswith(KEY[-4:]))
    assert first["key"] == KEY[:6] + "********" + KEY[-4:]
    data = first["data"]
    assert data["id_number"] == KEY[:6] + "********" + KEY[-4:]
    assert data["name"] == "张*" and data["phone"] == "138****5678"
    assert data["birth_date"] == "***"  # its length is not shown either
    assert "special_groups" not in data  # secret
    assert data["ethnicity"] == "01" and data["sex"] == person(1)["sex"]  # internal
    second = next(r for r in items if r is not first)
    assert second["data"]["name"] == "欧*"  # four characters: one shown


def test_an_unmasked_analyst_sees_personal_fields_but_not_secret_ones(merged,
                                                                      unmasked_analyst):
    items = unmasked_analyst.get("/api/v1/records/person").json["items"]
    data = next(r["data"] for r in items if r["key"] == KEY)
    assert data["id_number"] == KEY and data["name"] == "张伟"
    assert "special_groups" not in data


def test_history_is_masked_like_the_record(merged, login, unmasked_analyst):
    body = unmasked_analyst.get(f"/api/v1/records/person/{KEY}").json
    changes = body["history"][0]["changes"]
    assert changes["name"] == [None, "张伟"] and "special_groups" not in changes
    assert "special_groups" not in body["provenance"]


def test_a_masked_analyst_cannot_look_up_or_search_by_a_masked_field(merged, login):
    analyst = login("analyst")
    response = analyst.get(f"/api/v1/records/person/{KEY}")
    assert response.status_code == 403 and response.json["error"] == "masked_filter"
    for query in ("special_groups=独居老人", f"id_number={KEY}", "name=张伟"):
        response = analyst.get(f"/api/v1/records/person?{query}")
        assert response.status_code == 403, query
        assert response.json["error"] == "masked_filter"
    # a house's key is public: looked up by anyone in scope
    assert analyst.get(f"/api/v1/records/house/{GRID_CODE}-012-01-0101").status_code == 200


def test_a_list_field_filter_finds_records_whose_list_holds_the_value(merged, login):
    items = login("sup").get("/api/v1/records/person?special_groups=独居老人").json["items"]
    assert [r["key"] for r in items] == [KEY]
    assert login("sup").get("/api/v1/records/person?special_groups=留守儿童").json["items"] == []


def test_a_value_filter_typed_and_normalised(merged, login):
    analyst = login("analyst")
    houses = analyst.get("/api/v1/records/house?usage=2").json["items"]
    assert sorted(r["key"][-4:] for r in houses) == ["0101", "0103"]
    # a full-width digit with stray spaces, as a phone keyboard sends it
    assert len(analyst.get("/api/v1/records/house?usage=%20２%20").json["items"]) == 2
    both = analyst.get("/api/v1/records/house?usage=1&usage=2").json["items"]
    assert len(both) == 3
    combined = analyst.get("/api/v1/records/house?usage=2&address=西陵区夷陵大道 12 号")
    assert len(combined.json["items"]) == 2


@pytest.mark.parametrize("query, status, problem", [
    ("nonsense=1", 400, "unknown_filter"),
    ("location=1", 400, "unfilterable"),
    ("limit=0", 422, "invalid_request"),
    ("changed_since=yesterday", 422, "invalid_request"),
    ("cursor=xyz", 400, "bad_cursor"),
    ("grid=12345", 422, "invalid_request"),
])
def test_bad_queries_are_precise_4xx(merged, login, query, status, problem):
    response = login("admin").get(f"/api/v1/records/house?{query}")
    assert response.status_code == status, response.json
    assert response.json["error"] == problem


def test_an_integer_filter_needs_an_integer(login):
    response = login("admin").get("/api/v1/records/organization?employees=many")
    assert response.status_code == 400 and response.json["error"] == "bad_filter_value"
    assert login("admin").get("/api/v1/records/organization?employees=５").status_code == 200


def test_records_outside_scope_are_missing(merged, login):
    assert login("wfar").get(f"/api/v1/records/person/{KEY}").status_code == 404
    assert login("supfar").get("/api/v1/records/person").json["items"] == []
    assert login("wfar").get("/api/v1/records/person/nonexistent").status_code == 404
    assert login("admin").get("/api/v1/records/nosuchtype").status_code == 404


def test_changed_since_and_cursor_page_through_changes(merged, login, db):
    sup = login("sup")
    first = sup.get("/api/v1/records/house?limit=2").json
    assert len(first["items"]) == 2 and first["next"]
    rest = sup.get(f"/api/v1/records/house?limit=2&cursor={first['next']}").json
    assert len(rest["items"]) == 1 and rest["next"] is None
    mark = rest["items"][0]["updated_at"]
    send_and_confirm(login, "h1b", house("0101", "3"), record_type="house")
    changed = sup.get("/api/v1/records/house",
                      query_string={"changed_since": mark}).json["items"]
    assert [r["key"][-4:] for r in changed] == ["0103", "0101"]  # in the order they changed
    assert changed[-1]["version"] == 2


def test_grid_filter_narrows_within_scope(merged, login):
    sup = login("admin")
    send_and_confirm(login, "far", person(9), worker="wfar", grid_code=GRID_FAR,
                     supervisor="supfar")
    assert len(sup.get("/api/v1/records/person").json["items"]) == 3
    assert len(sup.get(f"/api/v1/records/person?grid={GRID_FAR}").json["items"]) == 1
    assert len(sup.get("/api/v1/records/person?grid=420502001").json["items"]) == 2


def test_an_integer_filter_beyond_64_bits_is_refused(login):
    response = login("admin").get("/api/v1/records/house?floor=99999999999999999999")
    assert response.status_code == 400 and response.json["error"] == "bad_filter_value"
