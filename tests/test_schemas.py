"""The batch schema's shortcut for plainly well-formed batches loads exactly what
marshmallow loads, and leaves everything else (and every error) to marshmallow."""
import marshmallow as ma
import pytest
from conftest import item, person
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_api_fuzz import DATA_KEYS, ITEM_KEYS, json_values

from gridcollect.api.schemas import SubmitBatch, TooManyItems, _plain_batch


def by_marshmallow(data):
    return ma.Schema.load(SubmitBatch(), data)


def outcome(load, data):
    try:
        return "loaded", load(data)
    except ma.ValidationError as exc:
        return "refused", exc.messages
    except TooManyItems as exc:
        return "too many", exc.args


def test_a_plain_batch_takes_the_shortcut_and_loads_the_same():
    batch = {"submissions": [item("a", person(1)), item("b", person(2), action="retire",
                                                         base_version=3),
                             {**item("c", person(3)), "replaces": 7},
                             {k: v for k, v in item("d").items() if k != "action"}]}
    assert _plain_batch(batch) is not None
    assert outcome(SubmitBatch().load, batch) == outcome(by_marshmallow, batch)


@pytest.mark.parametrize("change", [
    {"base_version": True}, {"replaces": 1.0}, {"replaces": 0}, {"action": None},
    {"client_id": "a\x00"}, {"client_id": ""}, {"grid_code": 420502001002003},
    {"collected_at": "2026-02-30T00:00:00"}, {"data": []}, {"extra": 1},
    {"record_type": ["person"]}, {"base_version": 2 ** 60}, {"base_version": -1},
    {"base_version": 2 ** 53 + 1}, {"replaces": 2 ** 53 + 1}, {"replaces": -1},
    {"client_id": "x" * 101}, {"grid_code": "1" * 65}, {"collected_at": "x" * 41},
    {"action": "delete"}, {"record_type": "people"}, {"data": None}, {"collected_at": None},
])
def test_anything_unusual_is_left_to_marshmallow(change):
    batch = {"submissions": [{**item("a"), **change}]}
    assert _plain_batch(batch) is None
    assert outcome(SubmitBatch().load, batch)[0] == "refused"


def test_the_edges_of_the_ranges_take_the_shortcut():
    batch = {"submissions": [{**item("a"), "base_version": 0, "replaces": 2 ** 53,
                              "client_id": "x" * 100, "grid_code": "1" * 64}]}
    assert _plain_batch(batch) is not None
    assert outcome(SubmitBatch().load, batch) == outcome(by_marshmallow, batch)


items = st.tuples(
    st.integers(0, 10 ** 6),
    st.dictionaries(st.sampled_from(ITEM_KEYS + ["extra"]), json_values, max_size=2),
    st.dictionaries(st.sampled_from(DATA_KEYS), json_values, max_size=2),
    st.lists(st.sampled_from(ITEM_KEYS), max_size=1))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(items, min_size=0, max_size=3), st.booleans())
def test_the_shortcut_agrees_with_marshmallow(batch, pristine):
    submissions = []
    for index, item_changes, data_changes, dropped in batch:
        record = item(f"c{index}", {**person(index % 900), **data_changes})
        if not pristine:
            record.update(item_changes)
            for key in dropped:
                record.pop(key, None)
        submissions.append(record)
    data = {"submissions": submissions}
    assert outcome(SubmitBatch().load, data) == outcome(by_marshmallow, data)
