"""Every cache-client behaviour cachelayer's adapters rely on that the client
library does not document as public API, pinned in one place (as
tests/test_django_internals.py does for Django): an upgrade of pymemcache,
pylibmc or redis-py that changes one fails here first, by name, against the
real memcached and Redis the suite uses."""

import inspect
import threading

import pylibmc
import pytest
import redis
from django.conf import settings
from pymemcache.client.base import Client, PooledClient
from pymemcache.pool import ObjectPool
from redis.cluster import NodesManager, RedisCluster

from cachelayer.adapters.routing import split_location

SERVER = split_location(settings.CACHES["memcached"]["LOCATION"])[0]


def _host_port() -> tuple[str, int]:
    host, port = SERVER.rsplit(":", 1)
    return host, int(port)


class Connection:
    """What the pool hands out (it stamps ``_last_used`` on it)."""


def test_object_pool_members_the_waiting_pool_builds_on():
    """adapters.memcached.WaitingPool passes ``lock_generator`` (a Condition), reads
    ``_free_objs``, ``_used_objs`` and ``max_size`` under ``_lock``, and overrides
    get/release/destroy(obj, silent)."""
    assert "lock_generator" in inspect.signature(ObjectPool.__init__).parameters
    pool = ObjectPool(Connection, lock_generator=threading.Condition, max_size=1)
    assert isinstance(pool._lock, threading.Condition)
    assert pool.max_size == 1 and not pool._free_objs and not pool._used_objs
    obj = pool.get()
    assert len(pool._used_objs) == 1
    pool.release(obj, True)
    assert list(pool._free_objs) == [obj]
    pool.destroy(pool.get(), True)
    assert not pool._free_objs and not pool._used_objs
    with pytest.raises(RuntimeError):  # what WaitingPool replaces by waiting
        pool.get(), pool.get()


def test_pooled_client_members_the_adapter_uses():
    """WaitingClient replaces ``client_pool`` built from ``_create_client``; the adapter's
    raw requests use a pooled base Client's ``sock`` (None until ``_connect()``)."""
    client = PooledClient(_host_port(), max_pool_size=2, connect_timeout=1, timeout=1)
    assert isinstance(client.client_pool, ObjectPool) and callable(client._create_client)
    raw = client.client_pool.get()
    assert isinstance(raw, Client) and raw.sock is None
    raw._connect()
    raw.sock.sendall(b"version\r\n")
    assert raw.sock.recv(64).startswith(b"VERSION ")
    raw.close()
    assert raw.sock is None
    client.client_pool.destroy(raw)


def test_pylibmc_client_members_the_adapter_uses():
    """adapters.pylibmc subclasses pylibmc.Client overriding ``deserialize(value, flags)``
    (flag 1 = pickled) and borrows clients with ``clone()``."""
    assert "deserialize" in vars(pylibmc.Client) or hasattr(pylibmc.Client, "deserialize")
    master = pylibmc.Client([SERVER])
    clone = master.clone()
    assert isinstance(clone, pylibmc.Client) and clone is not master
    clone.set("cachelayer-internals", {"a": 1})  # a dict is pickled: flag 1
    assert clone.get("cachelayer-internals") == {"a": 1}
    clone.delete("cachelayer-internals")


def test_redis_connection_members_the_adapter_uses():
    """adapters.redis sends its commands on connections of the client's own pool, past
    the client: ``make_connection()``, ``_sock`` (None until ``connect()``, which a
    Sentinel pool's connection class overrides to ask for the master),
    ``pack_commands``, ``send_packed_command``, ``read_response`` and ``disconnect()``."""
    client = redis.Redis.from_url(settings.CACHES["redis"]["LOCATION"])
    connection = client.connection_pool.make_connection()
    assert connection._sock is None
    connection.connect()
    assert connection._sock is not None
    connection.send_packed_command(
        connection.pack_commands([("SET", "cachelayer-internals", "1"), ("GET", "cachelayer-internals")])
    )
    assert [connection.read_response() for _ in range(2)] == [b"OK", b"1"]
    connection.send_packed_command(connection.pack_commands([("DEL", "cachelayer-internals")]))
    assert connection.read_response() == 1
    connection.disconnect()
    assert connection._sock is None
    client.close()


def test_redis_cluster_members_the_cluster_adapter_uses():
    """adapters.rediscluster finds a hash tag's master with ``nodes_manager.get_node_from_slot(slot)``
    (a node with a ``name``) and pings and reads INFO on it through ``get_redis_connection(node)``."""
    assert list(inspect.signature(NodesManager.get_node_from_slot).parameters)[:2] == ["self", "slot"]
    assert list(inspect.signature(RedisCluster.get_redis_connection).parameters) == ["self", "node"]
    assert "nodes_manager" in inspect.getsource(RedisCluster.__init__)
