"""Values the serializer cannot carry degrade to database reads (issue 24, defect 6).

Deal's HandField (Django's custom-field how-to) returns Hand objects, which
the JSON serializer cannot encode: such a row is not filled, the read
answers from the database, the failure is counted as an error and logged
once per field. CachedDeal's field declares ``cache_encode``/``cache_decode``
and is cached like any other.
"""

import logging

import pytest

from cachelayer.engine import stats, versions
from tests.layer.test_write_paths import read_fresh
from tests.testapp.hands import deal
from tests.testapp.models import CachedDeal, Deal


@pytest.fixture
def json_serializer(settings, monkeypatch, caplog):
    settings.CACHELAYER = {**settings.CACHELAYER, "SERIALIZER": "json"}
    monkeypatch.setattr(versions, "_warned_unencodable", set())  # as in a fresh process
    caplog.set_level(logging.WARNING, logger="cachelayer")


def warnings_about(caplog, field):
    return [r for r in caplog.records if field in r.getMessage() and "cannot encode" in r.getMessage()]


@pytest.mark.usefixtures("json_serializer")
def test_a_row_the_serializer_cannot_encode_is_read_from_the_database(caplog, django_assert_num_queries):
    row = Deal.objects.create(table=1, hand=deal())
    for _ in range(3):
        with django_assert_num_queries(1):  # never filled: every read asks the database
            assert Deal.cached.get(row.pk).hand == deal()
    with django_assert_num_queries(1):
        assert Deal.cached.get_many([row.pk])[row.pk].hand == deal()
    assert stats.snapshot()["testapp_deal"]["errors"] == 4
    assert len(warnings_about(caplog, "testapp.Deal.hand")) == 1  # once per field, not per read


@pytest.mark.usefixtures("json_serializer")
def test_an_index_list_the_serializer_cannot_encode_is_read_from_the_database(caplog, django_assert_num_queries):
    rows = [Deal.objects.create(table=2, hand=deal(offset)) for offset in (0, 1)]
    for _ in range(2):
        with django_assert_num_queries(1):
            assert [d.hand for d in Deal.cached.filter(table=2)] == [r.hand for r in rows]
    assert len(warnings_about(caplog, "testapp.Deal.hand")) == 1


@pytest.mark.usefixtures("json_serializer")
def test_absent_rows_and_rows_without_the_value_are_still_cached(django_assert_num_queries):
    empty = Deal.objects.create(table=3, hand=None)
    read_fresh(Deal, empty.pk), read_fresh(Deal, 10**9)
    with django_assert_num_queries(0):
        assert read_fresh(Deal, empty.pk).hand is None
        assert read_fresh(Deal, 10**9) is None


@pytest.mark.parametrize("serializer", ["json", "pickle"])
def test_a_field_that_declares_its_round_trip_is_cached(serializer, settings, django_assert_num_queries):
    settings.CACHELAYER = {**settings.CACHELAYER, "SERIALIZER": serializer}
    row = CachedDeal.objects.create(table=4, hand=deal())
    other = CachedDeal.objects.create(table=4, hand=None)
    read_fresh(CachedDeal, row.pk), read_fresh(CachedDeal, other.pk), list(CachedDeal.cached.filter(table=4))
    with django_assert_num_queries(0):
        assert read_fresh(CachedDeal, row.pk).hand == deal()
        assert read_fresh(CachedDeal, other.pk).hand is None
        assert [d.hand for d in CachedDeal.cached.filter(table=4)] == [deal(), None]
    assert stats.snapshot()["testapp_cacheddeal"]["errors"] == 0


def test_pickle_carries_the_objects_it_can(settings, django_assert_num_queries):
    row = Deal.objects.create(table=5, hand=deal())
    read_fresh(Deal, row.pk)
    with django_assert_num_queries(0):
        assert read_fresh(Deal, row.pk).hand == deal()


def test_a_check_warns_of_each_stored_field_the_json_serializer_cannot_carry(settings):
    from cachelayer.checks import check_containers

    def warned():
        return {m.obj.name: m.msg for m in check_containers(databases=["default"]) if m.id == "cachelayer.W013"}

    assert warned() == {}  # pickle carries Hand objects
    settings.CACHELAYER = {**settings.CACHELAYER, "SERIALIZER": "json"}
    found = warned()
    assert set(found) == {"testapp_deal", "testapp_deal__by_table"}  # CachedDeal declares its round trip
    assert "testapp.Deal.hand (HandField)" in found["testapp_deal"]
