"""cache_serve answers cache hits on its event loop, batched across clients;
everything that may need the database still runs on a database worker."""

import socket
import threading

import pytest

from cachelayer.adapters.registry import get_adapter
from cachelayer.engine.registry import registry
from cachelayer.protocol.worker import Seat
from tests.protocol.conftest import talk
from tests.testapp.models import KeyValue


@pytest.fixture
def worker_calls(monkeypatch):
    """Commands run on a database worker (the slow path), by name."""
    calls = []
    real = Seat.run

    async def run(self, call, *args):
        if args:
            calls.append(args[0].name)
        return await real(self, call, *args)

    monkeypatch.setattr(Seat, "run", run)
    return calls


@pytest.fixture
def gets(backend, monkeypatch):
    """The event loop's multi-gets (one request per server each): the keys of each."""
    adapter, calls = get_adapter(backend), []
    real = adapter.fetch_async

    async def fetch_async(groups, **kwargs):
        calls.append(sorted(groups))
        return await real(groups, **kwargs)

    monkeypatch.setattr(adapter, "fetch_async", fetch_async)
    return calls


def test_a_hit_is_answered_without_the_worker_and_a_miss_goes_to_it(server, policy, worker_calls):
    client = server.client()
    client.set("k", "v", flags=3, noreply=False)
    worker_calls.clear()
    assert client.get("k") == b"v"  # caching: a miss, the worker reads the database and fills
    assert worker_calls == {"caching": ["get"], "db_only": ["get"], "cache_only": []}[policy]
    worker_calls.clear()
    assert client.get("k") == b"v"
    assert client.gets("k")[0] == b"v"
    assert client.get_many(["k", "absent"]) == {"k": b"v"}  # caching: "absent" misses
    assert worker_calls == {"caching": ["get"], "db_only": ["get", "gets", "get"], "cache_only": []}[policy]
    assert server.client().get("absent") is None


def test_a_write_is_seen_by_the_next_fast_read(server, policy):
    client = server.client()
    client.set("k", "one", noreply=False)
    assert client.get("k") == b"one" and client.get("k") == b"one"
    KeyValue.objects.filter(key="k").update(value="two") if policy != "cache_only" else None
    client.set("k", "three", noreply=False)
    assert client.get("k") == b"three"
    client.delete("k", noreply=False)
    assert client.get("k") is None


def test_concurrent_clients_gets_share_one_multi_get(server, policy, gets):
    if policy == "db_only":
        pytest.skip("db_only reads never touch the cache")
    client = server.client()
    for i in range(8):
        client.set(f"k{i}", f"v{i}", noreply=False)
        client.get(f"k{i}")  # cached
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(8)]
    gets.clear()
    held = threading.Event()
    server._loop.call_soon_threadsafe(held.wait, 10)  # the loop waits: every request is in before it reads
    for i, sock in enumerate(socks):  # all sent before any is answered
        sock.sendall(f"get k{i}\r\n".encode())
    held.set()
    replies = [talk(sock, b"", end=b"END\r\n") for sock in socks]
    assert replies == [f"VALUE k{i} 0 2\r\nv{i}\r\nEND\r\n".encode() for i in range(8)]
    assert len(gets) < 8  # several clients' keys in one multi-get
    definition = registry.by_name["default"]  # keys as the column's collation folds them: K0 on MariaDB
    assert sorted(key for call in gets for key in call) == [definition.codec.user_key(f"k{i}") for i in range(8)]
    for sock in socks:
        sock.close()


def test_switching_and_write_batches_take_the_worker(start_server, policy, worker_calls):
    server = start_server()
    client = server.client()
    client.set("k", "v", noreply=False)
    client.get("k")
    worker_calls.clear()
    assert client.get("@@default.k") == b"v"
    assert worker_calls == ["get"]
    batched = start_server(batch_size=10).client()
    worker_calls.clear()
    batched.get("k")
    assert worker_calls == ["get"]


def test_a_planted_pickle_is_not_run_by_a_fast_read(server, policy, tmp_path):
    import pickle

    from tests.layer.test_bad_input import CreatesFile

    if policy == "db_only":
        pytest.skip("db_only reads no payload")
    client = server.client()
    client.set("k", "v", noreply=False)
    assert client.get("k") == b"v"  # filled (or stored: cache_only)
    definition, marker = registry.by_name["default"], tmp_path / "ran"
    key = definition.codec.user_key("k")  # "K" on MariaDB: the column's collation folds it
    get_adapter(definition.cache_alias).store({key: {definition.keys.data(key): pickle.dumps(CreatesFile(marker))}}, 0)
    expected = {"caching": b"v", "cache_only": None}[policy]  # cache_only: the cache was the store
    assert client.get("k") == expected
    assert not marker.exists()
