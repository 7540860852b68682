"""Redis Cluster (cachelayer.backends.RedisClusterCache) on a cluster of the
tests' own: the adapter contract, Django's cache API across slots, and reads
that stay fresh through writes and through a failover whose promoted replica
missed the last version increment."""

import signal
import threading
import time
import uuid

import pytest
import redis
from django.core.cache import caches
from django.db import connections
from redis.crc import key_slot

from cachelayer.adapters.rediscluster import TAGS
from cachelayer.adapters.registry import get_adapter
from tests.counting import round_trips
from tests.faults.cluster import Cluster
from tests.faults.servers import stop
from tests.faults.test_adapter_contract import (  # noqa: F401 (collected here, on the cluster)
    key,
    test_add_counts_creates_at_zero_and_adds_from_many_threads,
    test_add_stores_only_when_absent,
    test_compare_and_set,
    test_delete_ignores_absent_keys,
    test_fetch_of_no_keys_finds_nothing,
    test_fetch_reads_values_of_any_size_among_many,
    test_fetch_returns_found_keys_only,
    test_incr_everywhere_never_creates,
    test_invalidate_bumps_existing_counters_never_creates_one_and_deletes_payloads,
)
from tests.testapp.models import Item

# slow: a cluster of redis-server processes; one_database: the cluster's topology, not the database, is under test
pytestmark = [pytest.mark.slow, pytest.mark.one_database]
ALIAS = "cluster"


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def own_cluster():
    """A cluster for one test that fails a shard over."""
    cluster = Cluster().start()
    yield cluster
    cluster.stop()


def use_cluster(settings, cluster) -> str:
    settings.CACHES = {
        **settings.CACHES,
        ALIAS: {"BACKEND": "cachelayer.backends.RedisClusterCache", "LOCATION": cluster.urls},
    }
    settings.CACHELAYER = {
        "CACHE_ALIAS": ALIAS,
        "KEY_PREFIX": f"k{uuid.uuid4().hex[:12]}",
        "SOCKET_TIMEOUT": 0.5,
        "BREAKER_COOLDOWN": 0.5,
    }
    return ALIAS


@pytest.fixture
def cluster_cache(settings, cluster):
    return use_cluster(settings, cluster)


@pytest.fixture
def adapter(cluster_cache):
    adapter = get_adapter(cluster_cache)
    adapter.health.renew_at = adapter.health.trusted_until = float("inf")
    for server in adapter.servers:
        adapter.health.mark_clean(server, adapter.health.epoch(server))
    return adapter


def test_tags_spread_over_every_master(cluster):
    slots = [key_slot(tag.encode()) for tag in TAGS]
    assert len(set(slots)) == len(TAGS)
    assert {cluster.owner_of(slot)[0].port for slot in slots} == {cluster.owner_of(s)[0].port for s in (0, 8000, 16383)}


def test_a_routes_keys_share_a_slot(adapter, key):
    adapter.store({"r": {key("ver"): b"1", key("data"): b"2"}}, 0)
    tag = adapter.server_of("r")
    client = redis.RedisCluster(host="127.0.0.1", port=int(adapter.client.get_default_node().port))
    assert client.keyslot(tag + key("ver")) == client.keyslot(tag + key("data")) == key_slot(tag.encode())
    assert client.mget(tag + key("ver"), tag + key("data")) == [b"1", b"2"]  # one slot: a plain MGET


def test_django_cache_api_across_slots(cluster_cache):
    cache = caches[cluster_cache]
    data = {f"user:{i}": {"n": i} for i in range(50)}  # keys on every master
    cache.set_many(data, 30)
    assert cache.get_many(list(data)) == data
    cache.delete_many(list(data)[:25])
    assert cache.get_many(list(data)) == dict(list(data.items())[25:])
    assert cache.add("one", 1) and not cache.add("one", 2) and cache.get("one") == 1
    assert cache.incr("one") == 2


def test_reads_are_fresh_after_writes_and_hits_cost_no_query(
    cluster_cache, transactional_db, django_assert_num_queries
):
    items = [Item.objects.create(value=i) for i in range(30)]
    assert [i.value for i in Item.cached.get_many([i.pk for i in items]).values()] == list(range(30))
    with django_assert_num_queries(0):
        assert [i.value for i in Item.cached.get_many([i.pk for i in items]).values()] == list(range(30))
        assert Item.cached.get(items[3].pk).value == 3
    for item in items[::3]:
        item.value += 100
        item.save()
    expected = {item.pk: item.value for item in items}
    assert {pk: i.value for pk, i in Item.cached.get_many(list(expected)).items()} == expected
    Item.objects.filter(pk=items[1].pk).update(value=-1)
    assert Item.cached.get(items[1].pk).value == -1


def test_a_promoted_replica_that_missed_the_last_increment_serves_no_old_payload(
    own_cluster, settings, transactional_db, django_assert_num_queries
):
    cluster, alias = own_cluster, use_cluster(settings, own_cluster)
    item = Item.objects.create(value=1)
    assert Item.cached.get(item.pk).value == 1
    with django_assert_num_queries(0):
        assert Item.cached.get(item.pk).value == 1  # filled: payload and counters on the tag's master
    adapter = get_adapter(alias)
    master, replica = cluster.owner_of(key_slot(adapter.server_of(str(item.pk)).encode()))
    assert redis.Redis(port=master.port).wait(1, 5000) == 1  # ... and on its replica

    stop(replica.process)  # frozen: it cannot reconnect ...
    redis.Redis(port=master.port).client_kill_filter(_type="replica")  # ... once its link is cut, before the write
    item.value = 2
    item.save()  # its version bump reaches the master only
    master.kill()
    replica.process.send_signal(signal.SIGCONT)
    redis.Redis(port=replica.port).cluster("failover", "takeover")  # promoted, without the bump
    cluster.wait_ok()

    assert Item.cached.get(item.pk).value == 2  # not the payload whose counters match again
    with django_assert_num_queries(0):
        assert Item.cached.get(item.pk).value == 2  # the promoted master is trusted again


def test_a_slot_that_moved_to_another_node_is_verified_again_before_it_is_read(
    cluster, cluster_cache, transactional_db, django_assert_num_queries
):
    """A manual CLUSTER FAILOVER: redis-py follows the MOVED silently; the adapter
    sees the new owner, reads that row from the database, and re-verifies the tag."""
    item = Item.objects.create(value=1)
    assert Item.cached.get(item.pk).value == 1
    adapter = get_adapter(cluster_cache)
    tag = adapter.server_of(str(item.pk))
    master, replica = cluster.owner_of(key_slot(tag.encode()))
    redis.Redis(port=replica.port).cluster("failover")  # graceful: the replica caught up first
    stop = time.monotonic() + 20
    while cluster.owner_of(key_slot(tag.encode()))[0] is not replica:
        assert time.monotonic() < stop, "the replica never took over"
        time.sleep(0.1)
    cluster.wait_ok()

    with django_assert_num_queries(3):  # the answer of a node not verified is not trusted: the
        assert Item.cached.get(item.pk).value == 1  # row, then the topology check (2 queries)
    recorded = redis.Redis(port=replica.port).get(f"{tag}{settings_prefix()}:srv")
    assert recorded.decode().startswith(f"127.0.0.1:{replica.port}:")  # p:srv names the new owner


def settings_prefix() -> str:
    from cachelayer.core import conf

    return conf.get("KEY_PREFIX")


def _node_id(node) -> str:
    return redis.Redis(port=node.port).cluster("myid").decode()


def _migrate_slot(cluster, slot: int, source, target, stop: threading.Event) -> int:
    """Move ``slot`` from ``source`` to ``target`` as ``redis-cli --cluster reshard`` does (IMPORTING,
    MIGRATING, MIGRATE a few keys at a time, then SETSLOT NODE on every master); return the keys moved."""
    source_client, target_client = redis.Redis(port=source.port), redis.Redis(port=target.port)
    source_id, target_id = _node_id(source), _node_id(target)
    target_client.cluster("setslot", slot, "importing", source_id)
    source_client.cluster("setslot", slot, "migrating", target_id)
    moved = 0
    while not stop.is_set():
        keys = source_client.cluster("getkeysinslot", slot, 2)
        if not keys:
            break
        source_client.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
        moved += len(keys)
        time.sleep(0.02)  # reads and writes keep coming while the slot is split over two nodes
    for node in cluster.alive():
        if redis.Redis(port=node.port).execute_command("ROLE")[0] == b"master":
            redis.Redis(port=node.port).cluster("setslot", slot, "node", target_id)
    return moved


class UnderLoad:
    """A writer updating some rows of one tag every 5 ms and two readers reading them through the
    cache, in threads, while a test changes the cluster under them: ``stale`` collects every read
    older than the last update acknowledged before it began."""

    def __init__(self, adapter, count: int = 4):
        items = Item.objects.bulk_create([Item(value=0) for _ in range(100)])  # (some 6 a tag)
        self.tag = adapter.server_of(str(items[0].pk))
        self.rows = [item for item in items if adapter.server_of(str(item.pk)) == self.tag][:count]
        for item in self.rows:
            assert Item.cached.get(item.pk).value == 0  # cached on the tag's master
        self.slot = key_slot(self.tag.encode())
        self.acknowledged = {item.pk: 0 for item in self.rows}
        self.stale, self.errors, self.stop = [], [], threading.Event()
        self.threads = [threading.Thread(target=self._write), *(threading.Thread(target=self._read) for _ in range(2))]

    def _write(self):
        try:
            for n in range(1, 100_000):
                if self.stop.is_set():
                    break
                item = self.rows[n % len(self.rows)]
                Item.objects.filter(pk=item.pk).update(value=n)
                self.acknowledged[item.pk] = n  # committed and invalidated (or owed in the outbox): update() returned
                time.sleep(0.005)
        except Exception as exc:
            self.errors.append(repr(exc))
        finally:
            connections.close_all()

    def _read(self):
        try:
            while not self.stop.is_set():
                for item in self.rows:
                    floor = self.acknowledged[item.pk]
                    value = Item.cached.get(item.pk).value
                    if value < floor:
                        self.stale.append((item.pk, value, floor))
        except Exception as exc:
            self.errors.append(repr(exc))
        finally:
            connections.close_all()

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *exc_info):
        time.sleep(0.5)  # reads and writes on the new owner
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
        assert not self.errors, self.errors[:3]
        assert not self.stale, self.stale[:5]
        for item in self.rows:
            assert Item.cached.get(item.pk).value == Item.objects.get(pk=item.pk).value


def test_resharding_a_tag_under_writes_and_reads_serves_no_stale_row(own_cluster, settings, transactional_db):
    """A slot moves to another master, key by key, under load: no read older than the last
    acknowledged update, and afterwards every cached row equals the database's."""
    cluster, alias = own_cluster, use_cluster(settings, own_cluster)
    load = UnderLoad(get_adapter(alias))
    source = cluster.owner_of(load.slot)[0]
    target = next(
        node
        for node in cluster.alive()
        if node.port != source.port and redis.Redis(port=node.port).execute_command("ROLE")[0] == b"master"
    )
    with load:
        moved = _migrate_slot(cluster, load.slot, source, target, load.stop)
        cluster.wait_ok()
    assert moved >= 2 * len(load.rows), moved  # a version and a payload per row at least moved under load
    assert cluster.owner_of(load.slot)[0].port == target.port


def test_killing_a_master_under_writes_and_reads_serves_no_stale_row(own_cluster, settings, transactional_db):
    """The tag's master is killed under load; the cluster promotes its replica (which may miss the
    last increments): no read older than the last acknowledged update, before, during or after."""
    cluster, alias = own_cluster, use_cluster(settings, own_cluster)
    load = UnderLoad(get_adapter(alias))
    master, replica = cluster.owner_of(load.slot)
    with load:
        master.kill()
        stop = time.monotonic() + 30
        while _master_port(cluster, load.slot) != replica.port:
            assert time.monotonic() < stop, "the replica never took over"
            time.sleep(0.1)
        cluster.wait_ok()


def _master_port(cluster, slot: int) -> int | None:
    """The port of the master a live node says owns ``slot`` (it may have no replica left)."""
    for start, end, master, *_ in redis.Redis(port=cluster.alive()[0].port).execute_command("CLUSTER SLOTS"):
        if start <= slot <= end:
            return int(master[1])
    return None


def test_a_multi_get_over_every_tag_counts_one_round_trip_per_node(cluster_cache, transactional_db):
    """The 16 tags live on 3 masters: a cluster pipeline reads the tags of one node in one trip."""
    adapter, pks = get_adapter(cluster_cache), []
    while len({adapter.server_of(str(pk)) for pk in pks}) < len(TAGS):  # rows under every tag
        assert len(pks) < 2000, "16 tags never covered"
        pks += [item.pk for item in Item.objects.bulk_create([Item(value=i) for i in range(64)])]
    Item.cached.get_many(pks)  # filled
    with round_trips(cluster_cache) as counter:
        assert len(Item.cached.get_many(pks)) == len(pks)
    assert counter.count == 3  # one multi-get per master (16 when counted per tag)
