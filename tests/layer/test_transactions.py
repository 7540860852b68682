"""Transaction rules: invalidate after commit, read-your-writes, no unsafe fill."""

import pytest
from django.db import connections, transaction

from cachelayer.engine import transactions
from tests.conftest import ISOLATION_DATABASES
from tests.testapp.models import Item


class Rollback(Exception):
    pass


def test_rollback_leaves_the_cache_untouched(django_assert_num_queries):
    item = Item.objects.create(value=1)
    Item.cached.get(item.pk)
    with pytest.raises(Rollback), transaction.atomic():
        Item.objects.filter(pk=item.pk).update(value=2)
        raise Rollback
    with django_assert_num_queries(0):
        assert Item.cached.get(item.pk).value == 1


def test_read_your_writes_inside_atomic():
    item = Item.objects.create(value=1)
    Item.cached.get(item.pk)
    with transaction.atomic():
        item.value = 2
        item.save()
        assert Item.cached.get(item.pk).value == 2  # from the database, not the cache
    assert Item.cached.get(item.pk).value == 2


def test_written_key_never_fills_from_inside_atomic(django_assert_num_queries):
    item = Item.objects.create(value=1)
    with transaction.atomic():
        item.value = 2
        item.save()
        Item.cached.get(item.pk)
        Item.cached.get(item.pk)
    with django_assert_num_queries(1):  # nothing was filled inside
        assert Item.cached.get(item.pk).value == 2


def test_savepoint_rollback_keeps_the_outer_writes():
    item = Item.objects.create(value=1)
    Item.cached.get(item.pk)
    with transaction.atomic():
        item.value = 2
        item.save()
        with pytest.raises(Rollback), transaction.atomic():
            Item.objects.create(value=99)
            raise Rollback
        assert Item.cached.get(item.pk).value == 2
    assert Item.cached.get(item.pk).value == 2


@pytest.mark.django_db(transaction=True)
def test_no_written_set_outlives_its_transaction():
    """Reads skip the connection lookup while no written set is alive: commit and rollback both end one."""
    with transaction.atomic():
        item = Item.objects.create(value=1)
        assert transactions._alive
    assert not transactions._alive
    with pytest.raises(Rollback), transaction.atomic():
        item.save()
        with transaction.atomic():
            item.save()
        raise Rollback
    assert not transactions._alive


@pytest.mark.django_db(transaction=True, databases=ISOLATION_DATABASES)
def test_no_fill_inside_atomic_under_repeatable_read(on_server_database, django_assert_num_queries):
    from cachelayer.models import Container

    container = Container.objects.get(name="testapp_item")
    container.database = "repeatable_read"
    container.save()
    item = Item.objects.create(value=1)
    with transaction.atomic(using="repeatable_read"):
        assert Item.cached.get(item.pk).value == 1
    with django_assert_num_queries(1, connection=connections["repeatable_read"]):
        assert Item.cached.get(item.pk).value == 1  # still a miss: nothing was filled


def test_fill_inside_atomic_under_read_committed(on_server_database, django_assert_num_queries):
    item = Item.objects.create(value=1)
    with transaction.atomic():
        assert Item.cached.get(item.pk).value == 1
    with django_assert_num_queries(0):
        assert Item.cached.get(item.pk).value == 1


def test_no_fill_inside_atomic_on_sqlite(django_assert_num_queries):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    item = Item.objects.create(value=1)
    with transaction.atomic():
        Item.cached.get(item.pk)
    with django_assert_num_queries(1):
        Item.cached.get(item.pk)


PRIMITIVES = (
    "_get_many",
    "_get_many_servers",
    "_set_many",
    "_add",
    "_delete_many",
    "_invalidate",
    "_compare_and_set",
    "_add_counts",
    "_ping",
)


@pytest.fixture
def cache_calls(backend, monkeypatch, settings):
    """Every call of the adapter's per-server primitives: each is one request to one server.

    Nothing is counted, so nothing is published meanwhile (every STATS_INTERVAL
    seconds: a slow machine would see that request too)."""
    from cachelayer.adapters.registry import get_adapter

    settings.CACHELAYER = {**settings.CACHELAYER, "STATS": False}

    adapter, calls = get_adapter(backend), []
    for name in PRIMITIVES:
        real = getattr(adapter, name)

        def counting(*args, _name=name, _real=real):
            calls.append(_name)
            return _real(*args)

        monkeypatch.setattr(adapter, name, counting)
    return calls


def test_a_transaction_of_many_writes_pays_one_invalidation_round_trip_at_commit(cache_calls):
    from tests.testapp.models import Slugged

    items = [Item.objects.create(value=i) for i in range(4)]
    slugged = Slugged.objects.create(slug="one", value=1)
    for item in items:
        Item.cached.get(item.pk)
    Slugged.cached.get("one")
    cache_calls.clear()
    with transaction.atomic():
        for item in items[:3]:
            item.value += 10
            item.save()
        Item.objects.filter(pk=items[3].pk).update(value=99)
        slugged.value = 2
        slugged.save()  # a second model, another container: the same round trip
        Item.objects.create(value=7)
        assert cache_calls == []  # nothing before the commit
    assert cache_calls == ["_invalidate"]  # one server, one request: every key of the transaction
    cache_calls.clear()
    assert [Item.cached.get(item.pk).value for item in items] == [10, 11, 12, 99]
    assert Slugged.cached.get("one").value == 2


def test_a_save_outside_a_transaction_is_one_invalidation_round_trip(cache_calls):
    item = Item.objects.create(value=1)
    Item.cached.get(item.pk)
    cache_calls.clear()
    item.value = 2
    item.save()
    assert cache_calls == ["_invalidate"]


def test_a_delivery_that_raises_reaches_neither_the_writer_nor_the_later_callbacks(django_assert_num_queries):
    """A bug during delivery (here a cache_invalidated receiver that raises) is
    logged; the containers' generations go through the outbox, and the
    transaction's other on_commit callbacks run."""
    from cachelayer import signals
    from cachelayer.models import OutboxEntry

    def broken(**kwargs):
        raise ZeroDivisionError("a receiver's bug")

    item = Item.objects.create(value=1)
    Item.cached.get(item.pk)
    ran = []
    signals.cache_invalidated.connect(broken, dispatch_uid="test.broken")
    try:
        with transaction.atomic():
            Item.objects.filter(pk=item.pk).update(value=2)
            transaction.on_commit(lambda: ran.append("later"))
    finally:
        signals.cache_invalidated.disconnect(dispatch_uid="test.broken")
    assert ran == ["later"]
    assert OutboxEntry.objects.filter(container="testapp_item", route__isnull=True).exists()  # its generation
    assert Item.cached.get(item.pk).value == 2  # replays the outbox first
    assert not OutboxEntry.objects.exists()
    with django_assert_num_queries(0):
        assert Item.cached.get(item.pk).value == 2
