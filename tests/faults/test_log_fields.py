"""Log records say what they are about (``extra``: container, cache, server, keys),
so log pipelines can group them; the fault is real: a memcached address nobody
listens on (a stopped server), and a forged payload in tests/layer/test_bad_input.py."""

import logging
import uuid

import pytest

from cachelayer.adapters.registry import get_adapter
from cachelayer.engine import stats
from tests.faults.servers import free_port
from tests.testapp.models import Item

ALIAS = "stopped"


@pytest.fixture
def stopped_cache(settings, transactional_db):
    """Point cachelayer at a memcached address where no server runs; return that server."""
    server = f"127.0.0.1:{free_port()}"
    settings.CACHES = {
        **settings.CACHES,
        ALIAS: {"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache", "LOCATION": server},
    }
    settings.CACHELAYER = {"CACHE_ALIAS": ALIAS, "KEY_PREFIX": f"lf{uuid.uuid4().hex[:10]}", "SOCKET_TIMEOUT": 0.2}
    return server


def test_a_stopped_cache_server_is_named_in_every_record_about_it(stopped_cache, caplog):
    caplog.set_level(logging.DEBUG, logger="cachelayer")
    item = Item.objects.create(value=3)  # its invalidation cannot be delivered: kept in the outbox
    assert Item.cached.get(item.pk).value == 3  # served by the database, counted as an error
    stats.publish()  # the container's counters cannot reach its cache either
    assert get_adapter(ALIAS).servers == [stopped_cache]

    records = caplog.records
    assert records, "a refused connection was logged nowhere"
    for record in records:  # every record carries the fields, known or None
        assert {"container", "cache", "server", "keys"} <= set(vars(record)), record.getMessage()
    logging.Formatter("%(container)s %(cache)s %(server)s %(keys)s %(message)s").format(records[0])

    def about(text: str):
        found = [r for r in records if text in r.getMessage()]
        assert found, (text, [r.getMessage() for r in records])
        return found[0]

    burst = about("failed (")  # the breaker: the burst starts
    assert (burst.container, burst.cache, burst.server) == (None, ALIAS, stopped_cache)
    outdating = about("could not outdate")  # the topology check of a server it cannot verify
    assert (outdating.cache, outdating.server) == (ALIAS, stopped_cache)
    publishing = about("could not publish statistics of testapp_item")
    # the container from the caller, the cache and server from the CacheUnavailable the adapter raised
    assert (publishing.container, publishing.cache, publishing.server) == ("testapp_item", ALIAS, stopped_cache)
