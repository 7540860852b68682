"""Who decides when the cache cannot be read: the adapter only names the
unreachable routes (adapters/base.py ``Fetched``); the read path degrades to
the database, and a cache_only verb, whose store is the cache, raises."""

import pytest

import cachelayer
from cachelayer.engine import stats
from cachelayer.exceptions import CacheUnavailable
from demo_project.demo.models import DemoTest
from tests.layer.test_repository import make_container
from tests.testapp.models import Item


@pytest.mark.parametrize("client", ["memcached", "pylibmc", "redis"])
def test_reads_degrade_to_the_database_and_cache_only_verbs_raise(client, start_servers, use_servers):
    (server,) = start_servers("redis" if client == "redis" else "memcached")
    use_servers([server], client=client)
    make_container("kv", DemoTest, "cache_only", key_columns="c1", value_columns="c2")
    make_container("db", DemoTest, "caching", key_columns="c1", value_columns="c2")
    store, read_through = cachelayer.repository("kv"), cachelayer.repository("db")
    item = Item.objects.create(value=7)
    store.set("k", "cached")
    read_through.set("r", "row")  # (a row write outdates its key in every container of the model)
    assert (store.get("k"), read_through.get("r"), Item.cached.get(item.pk).value) == ("cached", "row", 7)
    stats.reset()

    server.kill()
    with pytest.raises(CacheUnavailable):
        store.get("k")  # not "absent": the value may well be there
    with pytest.raises(CacheUnavailable):
        store.get_many(["k", "other"])
    with pytest.raises(CacheUnavailable):
        store.set("k", "new")
    with pytest.raises(CacheUnavailable):
        store.delete("k")
    assert read_through.get("r") == "row"
    assert Item.cached.get(item.pk).value == 7
    assert Item.cached.get_many([item.pk])[item.pk].value == 7
    counted = stats.snapshot()
    assert counted["db"]["errors"] >= 1 and counted["testapp_item"]["errors"] >= 2
