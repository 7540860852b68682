"""The request memo (engine/memo.py), on every backend: a key read twice in one
request or ``cachelayer.memo()`` block costs one round trip; any write by this
process, and the end of the request, drop it."""

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction

import cachelayer
from tests.counting import round_trips
from tests.testapp.models import Item


@pytest.fixture(autouse=True)
def _no_stats_publish(settings, backend):
    """No counters published in the middle (a round trip every STATS_INTERVAL); the topology checked."""
    settings.CACHELAYER = {**settings.CACHELAYER, "STATS": False}
    Item.cached.get_many([0])


def read_trips(read) -> tuple:
    with round_trips() as counted:
        result = read()
    return result, counted.count


def test_a_key_read_twice_in_a_block_costs_one_round_trip(django_assert_num_queries):
    item = Item.objects.create(value=1)
    Item.cached.get(item.pk)  # cached: the first read in the block is a hit
    with cachelayer.memo():
        first, trips_first = read_trips(lambda: Item.cached.get(item.pk).value)
        with django_assert_num_queries(0):
            again, trips_again = read_trips(lambda: [Item.cached.get(item.pk).value for _ in range(3)])
        many, trips_many = read_trips(lambda: sorted(Item.cached.get_many([item.pk, 0])))
    assert (first, trips_first) == (1, 1)
    assert (again, trips_again) == ([1, 1, 1], 0)
    assert (many, trips_many) == ([item.pk], 1)  # 0 was never read: one trip for it alone
    _, trips_after = read_trips(lambda: Item.cached.get(item.pk))
    assert trips_after == 1  # the block is over


def test_an_absent_key_is_memoized_too(django_assert_num_queries):
    with cachelayer.memo():
        assert Item.cached.get_many([10**9]) == {}
        with django_assert_num_queries(0):
            assert read_trips(lambda: Item.cached.get_many([10**9]))[1:] == (0,)


def test_a_write_drops_the_memo():
    item = Item.objects.create(value=1)
    with cachelayer.memo():
        assert Item.cached.get(item.pk).value == 1
        item.value = 2
        item.save(update_fields=["value"])
        assert Item.cached.get(item.pk).value == 2
        with transaction.atomic():
            Item.objects.filter(pk=item.pk).update(value=3)
            assert Item.cached.get(item.pk).value == 3  # read-your-writes: the transaction's own row
        assert Item.cached.get(item.pk).value == 3
        other = Item.objects.create(value=5)
        assert Item.cached.get(other.pk).value == 5
        Item.objects.filter(pk=other.pk).update(value=6)  # a write to another key drops the whole memo
        assert Item.cached.get(other.pk).value == 6


def test_a_mutable_value_is_copied_for_each_reader():
    item = Item.objects.create(value=1)
    with cachelayer.memo() as memo:
        definition = type("Definition", (), {"name": "x"})()
        memo.put(definition, "k", ([1],))
        first = memo.get(definition, "k", None)
        first[0].append(2)
        assert memo.get(definition, "k", None) == ([1],)
        assert Item.cached.get(item.pk).value == 1


@pytest.fixture
def requests():
    """Send request_started / request_finished as a request would, with Django's
    close_old_connections off (as its test client does): the test's connection stays."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def test_the_request_memo_is_off_by_default_and_lives_one_request(settings, requests):
    item = Item.objects.create(value=1)
    Item.cached.get(item.pk)
    request_started.send(sender=None)
    try:
        assert all(read_trips(lambda: Item.cached.get(item.pk))[1] for _ in range(2))  # off: each read goes
    finally:
        request_finished.send(sender=None)
    settings.CACHELAYER = {**settings.CACHELAYER, "REQUEST_MEMO": True}
    request_started.send(sender=None)
    try:
        assert read_trips(lambda: Item.cached.get(item.pk))[1] >= 1
        assert read_trips(lambda: Item.cached.get(item.pk))[1] == 0
    finally:
        request_finished.send(sender=None)
    assert read_trips(lambda: Item.cached.get(item.pk))[1] >= 1  # the request is over
