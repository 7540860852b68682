"""Transaction rules: invalidate after commit, read-your-writes, no unsafe fill."""

import pytest
from django.db import connections, transaction

from cachelayer.engine import transactions
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


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_no_fill_inside_atomic_under_repeatable_read(on_mariadb, django_assert_num_queries):
    from cachelayer.models import Container

    container = Container.objects.get(name="testapp_item")
    container.database = "repeatable_read"
    container.save()
    item = Item.objects.create(value=1)
    with transaction.atomic(using="repeatable_read"):
        assert Item.cached.get(item.pk).value == 1
    with django_assert_num_queries(1, connection=connections["repeatable_read"]):
        assert Item.cached.get(item.pk).value == 1  # still a miss: nothing was filled


def test_fill_inside_atomic_under_read_committed(on_mariadb, django_assert_num_queries):
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
