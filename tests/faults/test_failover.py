"""A failover never brings an old payload back: a Redis replica that missed
the last version increment is promoted, the address the process uses moves
to it, and the row read through the cache is the committed one."""

import time
import types
import uuid

import pytest
import redis

from tests.faults.conftest import OUTPUT
from tests.faults.forwarder import Forwarder
from tests.faults.servers import ServerProcess
from tests.testapp.models import Item

# slow: redis-server processes; one_database: the failover, not the database, is under test
pytestmark = [pytest.mark.slow, pytest.mark.one_database]


@pytest.fixture
def redis_pair(request):
    """A primary and a replica of our own; the replica replicates through a link that can be cut."""
    data = OUTPUT / f"failover-{uuid.uuid4().hex[:8]}"
    data.mkdir(parents=True)
    primary = ServerProcess("redis", data_dir=str(data)).start()
    link = Forwarder(primary.port)
    replica = ServerProcess("redis", args=("--replicaof", "127.0.0.1", str(link.port)), data_dir=str(data))
    replica.start()
    yield primary, replica, link
    for process in (replica, primary):
        process.kill()
    link.close()


def wait_for_link(replica: ServerProcess, deadline: float = 30) -> None:
    client = redis.Redis(port=replica.port)
    stop = time.monotonic() + deadline
    while client.info("replication").get("master_link_status") != "up":
        assert time.monotonic() < stop, "the replica never synced"
        time.sleep(0.05)


def test_a_promoted_replica_that_missed_the_last_increment_serves_no_old_payload(
    redis_pair, use_servers, django_assert_num_queries
):
    primary, replica, link = redis_pair
    wait_for_link(replica)
    vip = Forwarder(primary.port)  # the address every process uses (a Sentinel's or a VIP's)
    try:
        use_servers([types.SimpleNamespace(kind="redis", location=f"redis://127.0.0.1:{vip.port}/0")])
        item = Item.objects.create(value=1)
        assert Item.cached.get(item.pk).value == 1  # filled: payload (gen, ver) on the primary
        with django_assert_num_queries(0):
            assert Item.cached.get(item.pk).value == 1
        assert redis.Redis(port=primary.port).wait(1, 5000) == 1  # ... and on the replica

        link.cut()  # the replica stops hearing the primary, before the write
        item.value = 2
        item.save()  # its version bump reaches the primary only
        primary.kill()
        redis.Redis(port=replica.port).replicaof("NO", "ONE")  # promoted, without the bump
        vip.move_to(replica.port)

        assert Item.cached.get(item.pk).value == 2  # not the payload whose counters match again
        with django_assert_num_queries(0):
            assert Item.cached.get(item.pk).value == 2  # the promoted server is trusted again
    finally:
        vip.close()
