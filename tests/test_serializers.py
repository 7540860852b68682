"""Payload serializers give back exactly the row they were given."""

import datetime
import decimal
import pickle

import pytest
from django.contrib.postgres.fields import ArrayField, HStoreField, IntegerRangeField
from django.db import models

from cachelayer.core.serializers import SERIALIZERS
from tests.testapp.hands import CachedHandField, HandField

UTC = datetime.UTC
ROWS = [
    (1, "a", None, b"\x00bytes", True, 2.5),
    (decimal.Decimal("1.50"), decimal.Decimal("-0"), decimal.Decimal("1E+3"), decimal.Decimal("NaN")),
    (
        datetime.datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC),
        datetime.datetime(1900, 2, 3, 4, 5, 6, 7, tzinfo=UTC),
        datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime.datetime(2026, 1, 1, 12, 0, 0, 1),  # naive (USE_TZ = False)
        datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
        datetime.date(2026, 1, 1),
    ),
    (),
    (  # JSONField values: objects and arrays as Django gives them, one object shaped like a tag
        {"a": [1, 2.5, None], "b": {"c": True}},
        ["x", {"y": []}, []],
        {"$": "dt", "v": "2026-01-01T00:00:00"},
        {},
    ),
    None,  # a negative entry
]


@pytest.mark.parametrize("name", sorted(SERIALIZERS))
@pytest.mark.parametrize("row", ROWS)
def test_a_payload_round_trips_with_its_types(name, row):
    serializer = SERIALIZERS[name]()
    back = serializer.loads(serializer.dumps((5, 6, "schema", row)))
    assert back[:3] == (5, 6, "schema")
    if row is None:
        assert back[3] is None
        return
    assert len(back[3]) == len(row)
    for got, want in zip(back[3], row):
        assert type(got) is type(want)
        if isinstance(want, decimal.Decimal) and want.is_nan():
            assert got.is_nan()
        else:
            assert got == want and str(got) == str(want)
        if isinstance(want, datetime.datetime):
            assert got.tzinfo == want.tzinfo


def test_a_flattened_pickle_payload_is_a_miss_for_a_reader_of_four_items():
    data = SERIALIZERS["pickle"]().dumps((1, 2, "s", (decimal.Decimal("1"),)))
    with pytest.raises(ValueError):
        gen, ver, schema, row = pickle.loads(data)  # what an older process does: a miss


@pytest.mark.parametrize("name", sorted(SERIALIZERS))
def test_an_index_entry_round_trips_as_a_list_of_rows(name):
    serializer = SERIALIZERS[name]()
    rows = [(1, "a", {"k": [1]}), (2, "b", None)]
    back = serializer.loads(serializer.dumps((5, 6, "schema", rows)))[3]
    assert type(back) is list and back == rows and all(type(row) is tuple for row in back)
    assert type(back[0][2]["k"]) is list


def _carried(field) -> bool:
    field.set_attributes_from_name("field")
    return SERIALIZERS["json"]().carries(field)


@pytest.mark.parametrize(
    "field, carried",
    [
        (models.DecimalField(max_digits=5, decimal_places=2), True),
        (models.JSONField(), True),
        (models.BinaryField(), True),
        (models.GenericIPAddressField(), True),
        (HandField(), False),
        (CachedHandField(), True),
        (ArrayField(models.IntegerField()), True),
        (ArrayField(HandField()), False),
        (HStoreField(), True),
        (IntegerRangeField(), False),
        (models.GeneratedField(expression=models.F("x"), output_field=models.IntegerField(), db_persist=True), True),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, models.Field) else str(value),
)
def test_the_json_serializer_says_which_fields_it_carries(field, carried):
    assert _carried(field) is carried


def test_a_foreign_key_is_carried_as_its_target_is():
    from tests.testapp.models import Child

    assert _carried(Child._meta.get_field("parent")) is True
    assert SERIALIZERS["pickle"]().carries(HandField()) is True
