"""The adapter contract: what the engine relies on from every cache adapter.

One suite, run on every real backend: LocMem, memcached (pymemcache and
pylibmc) and Redis through the shared matrix caches, and pools of private servers (a 3-server
memcached pool; a killed server) for routing and failure translation.
"""

import threading
import uuid

import pytest

from cachelayer.adapters.base import new_counter
from cachelayer.adapters.multiget import Fetched
from cachelayer.adapters.registry import get_adapter
from cachelayer.exceptions import CacheUnavailable

pytestmark = pytest.mark.caches("locmem", "memcached", "pylibmc", "redis")
MEMCACHED_CLIENTS = ["memcached", "pylibmc"]


@pytest.fixture
def adapter(cache_backend):
    """The backend's adapter with its servers clean and its topology checked
    (the outbox replay's job in the engine)."""
    adapter = get_adapter(cache_backend)
    adapter.health.renew_at = adapter.health.trusted_until = float("inf")
    for server in adapter.servers:
        adapter.health.mark_clean(server, adapter.health.epoch(server))
    return adapter


@pytest.fixture
def key():
    prefix = f"c{uuid.uuid4().hex[:10]}"
    return lambda name: f"{prefix}:{name}"


def test_fetch_returns_found_keys_only(adapter, key):
    adapter.store({"r": {key("a"): b"1"}}, 0)
    assert adapter.fetch({"r": [key("a"), key("absent")]}) == Fetched({"r": {key("a"): b"1"}}, [])


def test_a_dirty_server_is_unreachable_until_marked_clean(adapter, key):
    adapter.store({"r": {key("a"): b"1"}}, 0)
    server = adapter.server_of("r")
    adapter.health.mark_dirty(server)  # it may have missed invalidations
    assert adapter.fetch({"r": [key("a")]}) == Fetched({}, ["r"])
    assert adapter.dirty_servers() == [server]
    epoch = adapter.health.epoch(server)
    adapter.health.mark_dirty(server)  # failed again while a replay ran: that replay cleans nothing
    adapter.health.mark_clean(server, epoch)
    assert adapter.fetch({"r": [key("a")]}).unreachable == ["r"]
    adapter.health.mark_clean(server, adapter.health.epoch(server))
    assert adapter.fetch({"r": [key("a")]}) == Fetched({"r": {key("a"): b"1"}}, [])


def test_add_stores_only_when_absent(adapter, key):
    assert adapter.add(key("a"), b"first", 0, "r") is True
    assert adapter.add(key("a"), b"second", 0, "r") is False
    assert adapter.fetch({"r": [key("a")]}).found["r"] == {key("a"): b"first"}


def test_invalidate_bumps_existing_counters_never_creates_one_and_deletes_payloads(adapter, key):
    base = new_counter()
    adapter.store({"r": {key("ver"): base, key("data"): b"payload"}}, 0)
    failed, read = adapter.invalidate({"r": ([key("ver"), key("never")], [key("data")])}, read=[key("ver")])
    assert failed == []
    assert int(read[key("ver")]) == base + 1  # the read sees the bump: it runs after it, in the same trip
    found = adapter.fetch({"r": [key("ver"), key("never"), key("data")]}).found["r"]
    assert {name: int(value) for name, value in found.items()} == {key("ver"): base + 1}


def test_incr_everywhere_never_creates(adapter, key):
    adapter.store({None: {key("gen"): 5}}, 0)
    assert adapter.incr_everywhere(key("gen")) == []
    assert adapter.incr_everywhere(key("none")) == []
    found = adapter.fetch({None: [key("gen"), key("none")]}).found[None]
    assert {name: int(value) for name, value in found.items()} == {key("gen"): 6}


def test_compare_and_set(adapter, key):
    assert adapter.compare_and_set(key("a"), b"x", b"y", 0, "r") is False  # absent
    adapter.store({"r": {key("a"): b"x"}}, 0)
    assert adapter.compare_and_set(key("a"), b"other", b"y", 0, "r") is False
    assert adapter.compare_and_set(key("a"), b"x", b"y", 0, "r") is True
    assert adapter.fetch({"r": [key("a")]}).found["r"][key("a")] == b"y"


def test_add_counts_creates_at_zero_and_adds_from_many_threads(adapter, key):
    def add():
        for _ in range(25):
            adapter.add_counts({key("hits"): 2, key("misses"): 1})

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = adapter.fetch({None: [key("hits"), key("misses")]}).found[None]
    assert {name: int(value) for name, value in found.items()} == {key("hits"): 200, key("misses"): 100}


def test_delete_ignores_absent_keys(adapter, key):
    adapter.store({"r": {key("a"): b"1"}}, 0)
    adapter.delete({"r": [key("a"), key("absent")]})
    assert adapter.fetch({"r": [key("a")]}) == Fetched({"r": {}}, [])


# -- pools and failures: private servers ---------------------------------------


@pytest.mark.parametrize("client", MEMCACHED_CLIENTS)
def test_a_pool_keeps_every_key_of_a_route_on_one_server_and_reads_all_in_one_call(client, start_servers, use_servers):
    servers = start_servers("memcached", 3)
    adapter = use_servers(servers, client=client)
    routes = {f"user{i}": [f"k{i}:a", f"k{i}:b"] for i in range(30)}
    adapter.store({route: {name: route.encode() for name in names} for route, names in routes.items()}, 0)
    assert {adapter.server_of(route) for route in routes} == set(adapter.servers)  # spread over the pool
    found = adapter.fetch(routes)
    assert found == Fetched({route: {name: route.encode() for name in names} for route, names in routes.items()}, [])
    for route, names in routes.items():  # both keys on the route's server: one server answers for them
        holder = adapter.server_of(route)
        assert adapter._get_many(holder, names) == {name: route.encode() for name in names}


def test_an_outbox_entry_for_a_server_no_longer_in_the_pool_is_dropped(start_servers, use_servers, caplog):
    """A LOCATION edited after an outage: the replay must not fail on the server that went."""
    from cachelayer.engine import outbox
    from cachelayer.models import OutboxEntry

    (server,) = start_servers("memcached")
    adapter = use_servers([server])
    OutboxEntry.objects.create(cache_alias=adapter.alias, server="127.0.0.1:1", key="g", counters=["g"])
    adapter.health.mark_dirty(server.location)
    with caplog.at_level("ERROR", logger="cachelayer"):
        assert outbox.replay_owed(adapter) is True
    assert not OutboxEntry.objects.exists()
    assert adapter.dirty_servers() == []
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


@pytest.mark.parametrize("client", ["memcached", "pylibmc", "redis"])
def test_a_dead_server_is_left_out_of_reads_and_translated_for_writes(client, start_servers, use_servers):
    (server,) = start_servers("redis" if client == "redis" else "memcached")
    adapter = use_servers([server], client=client)
    adapter.store({"r": {"k": b"1"}}, 0)
    server.kill()
    assert adapter.fetch({"r": ["k"]}) == Fetched({}, ["r"])  # unreachable: named, never raised
    with pytest.raises(CacheUnavailable):
        adapter.add("k2", b"1", 0, "r")
    failed, read = adapter.invalidate({"r": (["v"], ["d"])}, read=["cfg"])
    assert (failed, read) == (["r"], {})
    assert adapter.incr_everywhere("g") == adapter.servers


@pytest.mark.parametrize("client", MEMCACHED_CLIENTS)
def test_a_pool_read_with_one_dead_server_returns_the_other_servers_keys(client, start_servers, use_servers):
    servers = start_servers("memcached", 3)
    adapter = use_servers(servers, client=client)
    routes = {f"user{i}": [f"k{i}:a"] for i in range(30)}
    adapter.store({route: {names[0]: b"v"} for route, names in routes.items()}, 0)
    dead = servers[0].location
    servers[0].kill()
    found, unreachable = adapter.fetch(routes)
    assert set(found) == {route for route in routes if adapter.server_of(route) != dead}
    assert set(unreachable) == {route for route in routes if adapter.server_of(route) == dead} != set()
    assert all(values == {routes[route][0]: b"v"} for route, values in found.items())
    assert adapter.dirty_servers() == [dead]


@pytest.mark.parametrize("size", [1, 5_000, 70_000])
def test_fetch_reads_values_of_any_size_among_many(adapter, key, size):
    """Replies longer than one socket read, values split across reads."""
    values = {key(f"v{i}"): bytes([i % 251]) * (size + i) for i in range(12)}
    adapter.store({"r": values}, 0)
    assert adapter.fetch({"r": [*values, key("absent")]}) == Fetched({"r": values}, [])


def test_fetch_of_no_keys_finds_nothing(adapter):
    assert adapter.fetch({"r": []}) in (Fetched({}, []), Fetched({"r": {}}, []))
