"""Many threads in one process, and a cache server frozen under them.

More threads than pooled connections must cost a wait or a database read,
never an exception; a write that commits while the server is frozen keeps its
invalidation (delivered or in the outbox), the transaction's other on_commit
callbacks run, and once the server is back no row read through the cache
differs from the database.
"""

import logging
import random
import threading
import time

import pytest
from django.db import connections, transaction
from django.db.models import F

from cachelayer.adapters.registry import get_adapter
from tests.conftest import database_name
from tests.faults.conftest import ALIAS, COOLDOWN, write_report
from tests.testapp.models import Item

THREADS = 200
# MariaDB's max_connections (151) is shared with other tests and sessions: at
# most this many threads are in an operation at once there (still more than a
# memcached pool's 64 connections); each closes its connection after it.
MARIADB_CONCURRENCY = 100


def _load(ids, seconds: float):
    errors, transactions, callbacks = [], [], []
    gate = threading.BoundedSemaphore(THREADS if database_name() == "sqlite" else MARIADB_CONCURRENCY)
    deadline = time.monotonic() + seconds

    def work(seed):
        rng = random.Random(seed)
        for _ in range(10_000):
            if time.monotonic() > deadline:
                break
            pk = rng.choice(ids)
            with gate:
                try:
                    if rng.random() < 0.1:
                        transactions.append(1)
                        with transaction.atomic():
                            Item.objects.filter(pk=pk).update(value=F("value") + 1)
                            transaction.on_commit(lambda: callbacks.append(1))
                    else:
                        Item.cached.get(pk)
                except Exception as exc:
                    errors.append(repr(exc))
                finally:
                    connections.close_all()

    workers = [threading.Thread(target=work, args=(seed,)) for seed in range(THREADS)]
    for worker in workers:
        worker.start()
    return workers, errors, transactions, callbacks


def _until_clean(adapter, pk, seconds: float = 15.0) -> float:
    """Read until the outbox replayed and no server is dirty; return how long it took."""
    started = time.monotonic()
    while adapter.dirty_servers() and time.monotonic() - started < seconds:
        Item.cached.get(pk)
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.parametrize("kind", ["memcached", "redis", "pylibmc"])
def test_200_threads_and_a_frozen_server_lose_no_invalidation(
    kind, start_servers, use_servers, django_assert_num_queries
):
    (server,) = start_servers("redis" if kind == "redis" else "memcached")
    adapter = use_servers([server], client=kind, SOCKET_TIMEOUT=0.5)
    ids = [item.pk for item in Item.objects.bulk_create(Item(value=0) for _ in range(THREADS))]
    Item.cached.get_many(ids)

    workers, errors, transactions, callbacks = _load(ids, 4.0)
    time.sleep(1.0)
    server.freeze()
    time.sleep(1.5)
    server.thaw()
    for worker in workers:
        worker.join(timeout=60)
    assert not any(worker.is_alive() for worker in workers)

    time.sleep(COOLDOWN)
    replay_seconds = _until_clean(adapter, ids[0])
    database = dict(Item.objects.values_list("pk", "value"))
    stale = [pk for pk in ids if Item.cached.get(pk).value != database[pk]]
    write_report(
        f"threads-frozen-{kind}",
        threads=THREADS,
        transactions=len(transactions),
        callbacks=len(callbacks),
        errors=len(errors),
        stale=len(stale),
        replay_s=round(replay_seconds, 3),
    )
    assert errors == [], errors[:5]
    assert len(callbacks) == len(transactions) > 0  # every one committed (no error)
    assert stale == []
    assert not adapter.dirty_servers()
    with django_assert_num_queries(0):  # the cache serves again: the comparison above filled it
        Item.cached.get(ids[-1])


def test_more_threads_than_pooled_connections_wait_for_one(start_servers, use_servers, settings, caplog):
    """No fault at all: 40 threads, a pool of 4 connections (pymemcache alone raises RuntimeError here)."""
    (server,) = start_servers("memcached")
    use_servers([server])
    settings.CACHES = {**settings.CACHES, ALIAS: {**settings.CACHES[ALIAS], "OPTIONS": {"max_pool_size": 4}}}
    ids = [item.pk for item in Item.objects.bulk_create(Item(value=3) for _ in range(40))]
    Item.cached.get_many(ids)
    adapter = get_adapter(ALIAS)
    caplog.set_level(logging.WARNING, logger="cachelayer")
    errors, values = [], []

    def work(pk):
        try:
            for _ in range(200):
                values.append(Item.cached.get(pk).value)
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            connections.close_all()

    workers = [threading.Thread(target=work, args=(pk,)) for pk in ids]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    pool = adapter.clients[server.location].client_pool
    assert errors == []
    assert values == [3] * 40 * 200
    assert len(pool.used) + len(pool.free) <= 4
    assert [r.getMessage() for r in caplog.records] == []


def test_redis_connections_that_failed_are_kept_within_max_connections(
    start_servers, use_servers, settings, django_assert_num_queries
):
    """A failed connection goes back disconnected: dropping it would count one
    more connection made against max_connections at every failure, until
    redis-py refused every new one for good."""
    (server,) = start_servers("redis")
    use_servers([server])
    options = {"CONNECTION_POOL_KWARGS": {"max_connections": 2}}
    settings.CACHES = {**settings.CACHES, ALIAS: {**settings.CACHES[ALIAS], "OPTIONS": options}}
    ids = [item.pk for item in Item.objects.bulk_create(Item(value=5) for _ in range(10))]
    Item.cached.get_many(ids)
    for _ in range(3):  # three outages: each fails and replaces connections
        server.kill()
        for pk in ids:
            assert Item.cached.get(pk).value == 5
        server.start()
        time.sleep(COOLDOWN)
        for pk in ids:
            assert Item.cached.get(pk).value == 5
    assert not get_adapter(ALIAS).dirty_servers()
    with django_assert_num_queries(0):
        Item.cached.get(ids[0])
