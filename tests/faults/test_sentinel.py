"""Sentinel through django-redis's own convention (``CONNECTION_FACTORY`` /
``DJANGO_REDIS_CONNECTION_FACTORY`` = ``SentinelConnectionFactory``, ``SENTINELS``,
``LOCATION = redis://mymaster/0``): cachelayer's adapter takes its connections
from the Sentinel-backed pool, and a Sentinel failover whose promoted replica
missed the last version increment serves no old payload: three Sentinels (quorum 2), the
first of which the client would ask dies before the failover."""

import time
import types
import uuid

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cachelayer.adapters.registry import get_adapter
from tests.faults.conftest import ALIAS, OUTPUT
from tests.faults.forwarder import Forwarder
from tests.faults.servers import ServerProcess, free_port
from tests.faults.test_failover import wait_for_link
from tests.testapp.models import Item

# slow: redis-server and sentinel processes; one_database: the failover, not the database, is under test
pytestmark = [pytest.mark.slow, pytest.mark.one_database]


SENTINELS = 3
QUORUM = 2  # Sentinels that must agree the master is down; a failover also needs a majority of them


@pytest.fixture
def sentinel_group():
    """A primary, a replica (through a link that can be cut) and three Sentinels watching them."""
    data = OUTPUT / f"sentinel-{uuid.uuid4().hex[:8]}"
    data.mkdir(parents=True)
    primary = ServerProcess("redis", data_dir=str(data)).start()
    link = Forwarder(primary.port)
    replica = ServerProcess("redis", args=("--replicaof", "127.0.0.1", str(link.port)), data_dir=str(data)).start()
    sentinels = []
    for number in range(SENTINELS):
        port = free_port()
        conf = data / f"sentinel-{number}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {data}\n"
            f"sentinel monitor mymaster 127.0.0.1 {primary.port} {QUORUM}\n"
            "sentinel down-after-milliseconds mymaster 500\nsentinel failover-timeout mymaster 5000\n"
        )
        sentinels.append(ServerProcess("sentinel", port=port, args=(str(conf),)).start())
    yield primary, replica, link, sentinels
    for process in (*sentinels, replica, primary):
        process.kill()
    link.close()


def wait_for_sentinels(sentinel, deadline: float = 20) -> None:
    """Wait until ``sentinel`` knows the others (they find each other through the master)."""
    client, stop = redis.Redis(port=sentinel.port), time.monotonic() + deadline
    while len(client.sentinel_sentinels("mymaster")) < SENTINELS - 1:
        assert time.monotonic() < stop, "the Sentinels never found each other"
        time.sleep(0.1)


def wait_for_master(sentinel, port: int, deadline: float = 20) -> None:
    client, stop = redis.Redis(port=sentinel.port), time.monotonic() + deadline
    while int(client.sentinel_get_master_addr_by_name("mymaster")[1]) != port:
        assert time.monotonic() < stop, "Sentinel never promoted the replica"
        time.sleep(0.1)


def test_a_sentinel_failover_whose_replica_missed_the_last_increment_serves_no_old_payload(
    sentinel_group, use_servers, settings, django_assert_num_queries
):
    primary, replica, link, sentinels = sentinel_group
    wait_for_link(replica)
    for sentinel in sentinels:
        wait_for_sentinels(sentinel)
    group = types.SimpleNamespace(kind="redis", location="redis://mymaster/0")
    use_servers(
        [group],
        options={
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "SENTINELS": [("127.0.0.1", sentinel.port) for sentinel in sentinels],
        },
    )
    item = Item.objects.create(value=1)
    assert Item.cached.get(item.pk).value == 1
    with django_assert_num_queries(0):
        assert Item.cached.get(item.pk).value == 1  # filled, through the master Sentinel names
    assert redis.Redis(port=primary.port).wait(1, 5000) == 1

    link.cut()  # the replica stops hearing the primary, before the write
    item.value = 2
    item.save()
    sentinels[0].kill()  # the first one the client asks is gone: the two left are a majority
    primary.kill()
    wait_for_master(sentinels[1], replica.port)  # the Sentinels promote the replica, without the bump

    assert get_adapter(ALIAS).client.connection_pool.__class__.__name__ == "SentinelConnectionPool"
    # Reads meeting a connection to the old master, or a breaker still open, come from the
    # database: every read must be fresh, and the new master must serve hits again soon.
    deadline, hit = time.monotonic() + 15, False
    while not hit:
        assert time.monotonic() < deadline, "no hit through the promoted replica"
        with CaptureQueriesContext(connection) as queries:
            assert Item.cached.get(item.pk).value == 2
        hit = not queries.captured_queries
        time.sleep(0.05)
