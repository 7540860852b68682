"""Every write path invalidates: write, then read in a fresh request -> new value."""

import pytest
from django.core.signals import request_finished, request_started
from django.db import connection

import cachelayer
from tests.testapp.models import Child, Item, Parent, Slugged


def read_fresh(model, key, container=None):
    """Read as a new request would (Django closes caches and connections between)."""
    request_finished.send(sender=None)
    request_started.send(sender=None)
    try:
        return (model.cached.container(container) if container else model.cached).get(key)
    except model.DoesNotExist:
        return None


@pytest.fixture
def item():
    item = Item.objects.create(value=1)
    assert read_fresh(Item, item.pk).value == 1  # now cached
    return item


def test_save(item):
    item.value = 2
    item.save()
    assert read_fresh(Item, item.pk).value == 2


def test_delete(item):
    item.delete()
    assert read_fresh(Item, item.pk) is None


def test_cascade_delete():
    parent = Parent.objects.create(name="p")
    child = Child.objects.create(parent=parent, value=5)
    assert read_fresh(Child, child.pk).value == 5
    parent.delete()
    assert read_fresh(Child, child.pk) is None


def test_queryset_update(item):
    assert Item.objects.filter(pk=item.pk).update(value=3) == 1
    assert read_fresh(Item, item.pk).value == 3


def test_queryset_update_over_the_limit_bumps_the_generation(item, settings):
    settings.CACHELAYER = {**settings.CACHELAYER, "UPDATE_KEYS_LIMIT": 0}
    assert read_fresh(Item, item.pk).value == 1  # cached under the new settings
    assert Item.objects.all().update(value=4) == 1
    assert read_fresh(Item, item.pk).value == 4


def test_queryset_delete(item):
    Item.objects.filter(pk=item.pk).delete()
    assert read_fresh(Item, item.pk) is None


def test_bulk_create_replaces_negative_entries():
    assert read_fresh(Slugged, "new") is None  # cached as absent
    Slugged.objects.bulk_create([Slugged(slug="new", value=9)])
    assert read_fresh(Slugged, "new").value == 9


def test_bulk_update(item):
    item.value = 6
    Item.objects.bulk_update([item], ["value"])
    assert read_fresh(Item, item.pk).value == 6


def test_get_or_create_and_update_or_create():
    assert read_fresh(Slugged, "g") is None
    Slugged.objects.get_or_create(slug="g", defaults={"value": 1})
    assert read_fresh(Slugged, "g").value == 1
    Slugged.objects.update_or_create(slug="g", defaults={"value": 2})
    assert read_fresh(Slugged, "g").value == 2


def test_changing_the_key_invalidates_old_and_new():
    row = Slugged.objects.create(slug="old", value=1)
    assert read_fresh(Slugged, "old").value == 1
    assert read_fresh(Slugged, "new") is None
    row = Slugged.objects.get(pk=row.pk)
    row.slug = "new"
    row.save()
    assert read_fresh(Slugged, "old") is None
    assert read_fresh(Slugged, "new").value == 1


def test_raw_sql_with_public_invalidate(item):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE testapp_item SET value = 8 WHERE id = %s", [item.pk])
    assert read_fresh(Item, item.pk).value == 1  # cachelayer could not see it
    cachelayer.invalidate(Item, [item.pk])
    assert read_fresh(Item, item.pk).value == 8


def test_instance_invalidate(item):
    Item.objects.filter(pk=item.pk).update(value=5)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE testapp_item SET value = 9 WHERE id = %s", [item.pk])
    item.invalidate()
    assert read_fresh(Item, item.pk).value == 9


def test_invalidated_signal(item):
    seen = []

    def receiver(sender, container, keys, **kwargs):
        seen.append((sender, container, keys))

    cachelayer.signals.cache_invalidated.connect(receiver)
    try:
        item.save()
    finally:
        cachelayer.signals.cache_invalidated.disconnect(receiver)
    assert seen == [(Item, "testapp_item", [str(item.pk)])]


def test_a_row_in_two_containers_is_invalidated_in_one_cache_call(backend, monkeypatch):
    """Both containers of the model get outdated, through one adapter call (one round trip)."""
    from django.contrib.contenttypes.models import ContentType

    from cachelayer.adapters.registry import get_adapter
    from cachelayer.models import Container

    Container.objects.create(
        name="slugged_by_id", content_type=ContentType.objects.get_for_model(Slugged), key_columns="id"
    )
    row = Slugged.objects.create(slug="s", value=1)
    by_id = Slugged.cached.container("slugged_by_id")
    assert (read_fresh(Slugged, "s").value, by_id.get(row.pk).value) == (1, 1)
    adapter = get_adapter(backend)
    calls = []
    real = adapter.invalidate
    monkeypatch.setattr(adapter, "invalidate", lambda groups, **kw: calls.append(dict(groups)) or real(groups, **kw))
    row.value = 2
    row.save()
    assert len(calls) == 1 and len(calls[0]) == 2  # one call, a route per container key
    assert (read_fresh(Slugged, "s").value, by_id.get(row.pk).value) == (2, 2)
