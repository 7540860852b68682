"""The near-cache (L1, adapters/nearcache.py) on real Redis: hits that touch no
socket, the writer's own drops, another process's drops by push, the insert
guard, a broken or silent channel, and its bounds."""

import json
import os
import select
import socket
import threading
import time
import uuid

import pytest
import redis
from django.db import connection

from cachelayer.adapters.nearcache import MISSING, NearCache
from cachelayer.adapters.registry import get_adapter
from cachelayer.core import conf
from cachelayer.engine import versions
from cachelayer.engine.registry import registry
from tests.counting import round_trips
from tests.faults.servers import ServerProcess
from tests.testapp.models import Item

MAX_LAG = 0.5  # s: short, so that the tests of a silent channel wait little
WAIT = 10.0  # s: the longest any bounded wait below waits (never a timed assert)


def wait_until(condition, what: str, seconds: float = WAIT) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.002)


def near_settings(**more) -> dict:
    return {
        "CACHE_ALIAS": "redis",
        "KEY_PREFIX": f"n{uuid.uuid4().hex[:12]}",
        "NEAR_CACHE": True,
        "NEAR_CACHE_MAX_LAG": MAX_LAG,
        **more,
    }


@pytest.fixture
def near(settings, transactional_db):
    """The default Redis cache with a near-cache, subscribed and trusted."""
    settings.CACHELAYER = near_settings()
    Item.cached.get_many([0])  # loads definitions, replays the (empty) outbox: the server is clean
    near = get_adapter("redis").near
    near.token()  # starts the subscriber (a read's first miss would)
    wait_until(near.serving, "the subscriber subscribed")
    return near


def kept(alias: str, item) -> bool:
    """Read ``item``; return whether its row is now in the near-cache (a Redis hit inserts it)."""
    Item.cached.get(item.pk)
    near = get_adapter(alias).near
    return near.serving() and near.get(("testapp_item", str(item.pk)), registry.for_cached_model(Item)) is not MISSING


def warm(item, alias: str = "redis") -> None:
    wait_until(lambda: kept(alias, item), "the row entered the near-cache")


def raw_redis() -> redis.Redis:
    from django.conf import settings

    return redis.Redis.from_url(settings.CACHES["redis"]["LOCATION"])


def test_a_hit_touches_no_socket(near, monkeypatch, django_assert_num_queries):
    item = Item.objects.create(value=1)
    warm(item)
    reader = threading.get_ident()

    def refuse(name):
        real = getattr(socket.socket, name) if hasattr(socket.socket, name) else getattr(select, name)

        def call(*args, **kwargs):
            if threading.get_ident() == reader:  # the subscriber thread keeps its socket
                raise AssertionError(f"a near-cache hit called {name}")
            return real(*args, **kwargs)

        return call

    with round_trips("redis") as counted:  # (its periodic work done first: it uses sockets)
        for name in ("send", "sendall", "recv", "recv_into", "connect"):
            monkeypatch.setattr(socket.socket, name, refuse(name))
        for name in ("select", "poll"):
            monkeypatch.setattr(select, name, refuse(name))
        with django_assert_num_queries(0):
            assert [Item.cached.get(item.pk).value for _ in range(3)] == [1, 1, 1]
    monkeypatch.undo()  # before the teardown's flush, whose configuration bump needs the sockets
    assert counted.count == 0


def test_the_writer_never_reads_its_old_row_after_commit(near, monkeypatch):
    """The writer's own drop is synchronous: it never waits for its subscriber,
    which is slowed down here (its own message comes 20 ms late)."""
    real_drop = NearCache.drop

    def late_when_pushed(self, counters):
        if threading.current_thread().name == "cachelayer-l1":
            time.sleep(0.02)
        real_drop(self, counters)

    monkeypatch.setattr(NearCache, "drop", late_when_pushed)
    item = Item.objects.create(value=0)
    warm(item)
    seen = []
    for value in range(1, 21):
        item.value = value
        item.save(update_fields=["value"])  # outside atomic: committed and delivered when save() returns
        seen.append(Item.cached.get(item.pk).value)
        warm(item)  # back in the near-cache before the next write
    assert seen == list(range(1, 21))


def test_an_invalidation_applied_during_a_read_refuses_its_insert(near, monkeypatch):
    """The classic race: a read gets the old payload from Redis, another process's
    invalidation arrives and is applied, then the read inserts: the insert must be refused.

    The other process is played by hand: the row changes in the database, and its
    version is bumped and published as a writer's script does (adapters/redis.py)."""
    item = Item.objects.create(value=1)
    Item.cached.get(item.pk)  # filled in Redis (a miss inserts nothing)
    definition = registry.for_cached_model(Item)
    ver_key = definition.keys.ver(definition.keys.part(str(item.pk)))
    real_fetch, raced = versions.fetch, []

    def fetch_then_another_process_writes(definition_, keys, *args, **kwargs):
        read = real_fetch(definition_, keys, *args, **kwargs)
        if not raced:
            raced.append(True)
            messages = near.subscriber.messages
            write_elsewhere(item.pk, 2, ver_key, publish=True)
            wait_until(lambda: near.subscriber.messages > messages, "the subscriber applied the invalidation")
        return read

    monkeypatch.setattr(versions, "fetch", fetch_then_another_process_writes)
    assert Item.cached.get(item.pk).value == 1  # began before the write: the old value is its answer
    monkeypatch.setattr(versions, "fetch", real_fetch)
    assert near.counts["refused"] >= 1
    assert Item.cached.get(item.pk).value == 2  # but it was not kept


def write_elsewhere(pk, value, ver_key, publish: bool) -> None:
    """Change a row as another process would: raw SQL, then its version in Redis (published or not)."""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Item._meta.db_table} SET value = %s WHERE id = %s", [value, pk])
    client = raw_redis()
    client.incr(ver_key)
    if publish:
        client.publish(get_adapter("redis").channel, ver_key)


def test_a_killed_channel_drops_everything(near):
    """A message published while the subscriber was away is lost: the reconnect clears L1.

    The lost message is made by hand: the row changes in the database and its
    version in Redis, and nothing is published (as if published in the gap)."""
    item = Item.objects.create(value=1)
    warm(item)
    definition = registry.for_cached_model(Item)
    write_elsewhere(item.pk, 2, definition.keys.ver(definition.keys.part(str(item.pk))), publish=False)
    assert Item.cached.get(item.pk).value == 1  # the near-cache missed the message
    subscriptions = near.subscriber.subscriptions
    client = raw_redis()
    killed = sum(client.client_kill_filter(_id=c["id"]) for c in client.client_list() if _ours(c))
    assert killed == 1
    wait_until(lambda: near.subscriber.subscriptions > subscriptions, "the subscriber subscribed again")
    assert Item.cached.get(item.pk).value == 2


def _ours(entry) -> bool:
    """Return whether a client-list entry is this process's subscriber (its name holds our pid)."""
    return entry["name"] == f"cachelayer-l1-{os.getpid()}-{get_adapter('redis').channel}"


@pytest.mark.slow  # a redis-server of its own
def test_a_silent_channel_stops_the_near_cache(settings, transactional_db):
    """A channel that stops answering (its server frozen) lapses the trust within MAX_LAG:
    nothing is served from L1 after that, and L1 is empty."""
    server = ServerProcess("redis").start()  # a free port: the runs go side by side
    try:
        settings.CACHES = {
            **settings.CACHES,
            "private": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": server.location},
        }
        settings.CACHELAYER = near_settings(CACHE_ALIAS="private", SOCKET_TIMEOUT=0.2, BREAKER_COOLDOWN=1.0)
        item = Item.objects.create(value=1)
        Item.cached.get(item.pk)
        near = get_adapter("private").near
        definition = registry.for_cached_model(Item)
        warm(item, "private")
        server.freeze()
        wait_until(lambda: not near.serving(), "the trust lapsed", seconds=MAX_LAG * 4)
        assert near.get(("testapp_item", str(item.pk)), definition) is MISSING
        assert len(near) == 0
        assert Item.cached.get(item.pk).value == 1  # from the database (the cache is frozen)
    finally:
        server.kill()


@pytest.mark.slow  # a worker process
def test_another_process_stops_serving_the_old_row(near, tmp_path):
    """A process that keeps the row in its near-cache reads the new value soon after
    the write (a bounded wait for it: the delay is the benchmark's to measure)."""
    from tests.faults.test_processes import spawn

    item = Item.objects.create(value=1)
    ready, out = tmp_path / "ready", tmp_path / "out.json"
    settings_ = near_settings(KEY_PREFIX=conf.get("KEY_PREFIX"))  # the fixture's key space
    args = {"pk": item.pk, "until": 2, "ready": str(ready), "out": str(out), "seconds": WAIT}
    watcher = spawn("watch", args, settings_)
    try:
        wait_until(
            lambda: ready.exists() or watcher.poll() is not None, "the watcher served from its near-cache", seconds=30
        )
        assert ready.exists()
        item.value = 2
        item.save(update_fields=["value"])
        assert watcher.wait(timeout=WAIT + 30) == 0
    finally:
        watcher.kill()
    report = json.loads(out.read_text())
    assert report["saw"] == 2 and report["near_hits"] > 0


def test_bounds_evict_the_least_recently_used():
    near = NearCache("p:cfg", max_entries=3, max_bytes=10_000, timeout=60, max_lag=1.0)
    near.trust(time.monotonic() + 60)
    owner = object()

    def keep(name, size=10):
        return near.keep(near.token(), name, owner, f"p:v:c:{name}", "p:g:c", (name,), size, None)

    for name in "abc":
        assert keep(name)
    assert near.get("a", owner) == ("a",)  # a is now the most recently used
    keep("d")
    assert [near.get(name, owner) is MISSING for name in "abcd"] == [False, True, False, False]
    assert near.counts["evictions"] == 1
    assert keep("e", size=10_000 - 200 - 210)  # c goes (4 entries), then a (bytes): d and e fit exactly
    assert len(near) == 2 and near.bytes == 10_000
    assert [near.get(name, owner) is MISSING for name in "acde"] == [True, True, False, False]
    assert not keep("huge", size=10_000)  # larger than the whole bound: never kept


def test_a_drop_or_clear_refuses_an_older_token():
    near = NearCache("p:cfg", max_entries=10, max_bytes=100_000, timeout=60, max_lag=1.0)
    near.trust(time.monotonic() + 60)
    owner = object()
    token = near.token()
    near.drop(["p:v:c:1"])
    assert not near.keep(token, "1", owner, "p:v:c:1", "p:g:c", (1,), 10, None)
    assert near.keep(near.token(), "1", owner, "p:v:c:1", "p:g:c", (1,), 10, None)
    token = near.token()
    near.drop(["p:g:c"])  # the container's generation: every row of it
    assert near.get("1", owner) is MISSING
    assert not near.keep(token, "2", owner, "p:v:c:2", "p:g:c", (2,), 10, None)
    near.keep(near.token(), "2", owner, "p:v:c:2", "p:g:c", (2,), 10, None)
    token = near.token()
    near.drop(["p:cfg"])  # the configuration version: everything
    assert len(near) == 0
    assert not near.keep(token, "3", owner, "p:v:c:3", "p:g:d", (3,), 10, None)
    mutable = near.token()
    assert near.keep(mutable, "4", owner, "p:v:c:4", "p:g:c", ({"a": 1},), 10, None)
    first = near.get("4", owner)
    first[0]["a"] = 2
    assert near.get("4", owner) == ({"a": 1},)  # each caller gets its own copy of a mutable row
