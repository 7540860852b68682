"""Reads and writes through pylibmc: the whole path on the second memcached client.

The full matrix runs on pymemcache (the default); the adapter contract
(tests/faults/test_adapter_contract.py) and this smoke run on pylibmc.
"""

import pickle

import pytest
from django.db import transaction
from pymemcache.client.base import Client

from cachelayer.adapters.pylibmc import PyLibMCAdapter
from cachelayer.adapters.registry import get_adapter
from cachelayer.engine.registry import registry
from tests.layer.test_bad_input import CreatesFile
from tests.testapp.models import Item, Slugged

pytestmark = pytest.mark.caches("pylibmc")


def test_the_pylibmc_alias_reads_through_pylibmc(backend):
    assert isinstance(get_adapter(backend), PyLibMCAdapter)


def test_hit_write_and_miss(django_assert_num_queries):
    item = Item.objects.create(value=1)
    with django_assert_num_queries(1):
        assert Item.cached.get(item.pk).value == 1
    with django_assert_num_queries(0):
        assert Item.cached.get(item.pk).value == 1
    item.value = 2
    item.save()
    with django_assert_num_queries(1):
        assert Item.cached.get(item.pk).value == 2  # the write outdated the payload
    with transaction.atomic():
        Item.objects.filter(pk=item.pk).update(value=3)
    assert Item.cached.get(item.pk).value == 3
    item.delete()
    with pytest.raises(Item.DoesNotExist):
        Item.cached.get(item.pk)
    with django_assert_num_queries(0), pytest.raises(Item.DoesNotExist):
        Item.cached.get(item.pk)  # negative entry


def test_get_many_and_a_hashed_key(django_assert_num_queries):
    items = [Item.objects.create(value=i) for i in range(5)]
    slug = Slugged.objects.create(slug="with space\nand newline " + "x" * 300)
    with django_assert_num_queries(1):
        assert {k: v.value for k, v in Item.cached.get_many([i.pk for i in items]).items()} == {
            i.pk: i.value for i in items
        }
    with django_assert_num_queries(0):
        assert len(Item.cached.get_many([i.pk for i in items])) == 5
    Slugged.cached.get(slug.slug)
    with django_assert_num_queries(0):
        assert Slugged.cached.get(slug.slug).pk == slug.pk


def test_a_value_planted_with_the_pickle_flag_is_never_unpickled(backend, tmp_path, django_assert_num_queries):
    item = Item.objects.create(value=4)
    Item.cached.get(item.pk)
    definition = registry.for_cached_model(Item)
    marker = tmp_path / "ran"
    host, port = get_adapter(backend).servers[0].rsplit(":", 1)
    planter = Client((host, int(port)))
    # noreply=False: stored before the read below (pymemcache's default sends and moves on)
    stored = planter.set(definition.keys.data(str(item.pk)), pickle.dumps(CreatesFile(marker)), flags=1, noreply=False)
    assert stored  # flags=1: pylibmc's "pickled"
    with django_assert_num_queries(1):
        assert Item.cached.get(item.pk).value == 4
    assert not marker.exists()
