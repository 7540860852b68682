"""cache_serve's event loop never waits for the cache: its multi-gets are the loop's own I/O.

Many clients pipelining gets at once get their own answers, a write is seen
by every client's next read, and a frozen cache server (SIGSTOP) holds only
the commands that need it: other clients are answered meanwhile, and the
frozen one's commands are answered from the database after its timeout.
"""

import socket

import pytest

from tests.faults.servers import ServerProcess
from tests.protocol.conftest import read_reply, served_container, talk
from tests.testapp.models import KeyValue

CLIENTS = 40
BIG = 300 * 1024  # a value that arrives in several reads of the cache's reply


def _values(round_: int) -> dict[str, str]:
    values = {f"k{i}": f"v{i}-{round_}" for i in range(CLIENTS)}
    values["big"] = "b" * BIG if round_ % 2 else "c" * BIG
    return values


def _expected(keys: list[str], values: dict[str, str]) -> bytes:
    return (
        b"".join(f"VALUE {key} 0 {len(values[key])}\r\n{values[key]}\r\n".encode() for key in keys if key in values)
        + b"END\r\n"
    )


def _read(sock: socket.socket, size: int) -> bytes:
    """Read ``size`` bytes (fewer if the server closes)."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_many_clients_pipelining_gets_get_their_own_answers_and_no_stale_value(server, policy):
    """Every socket sends three gets before any reply is read; between rounds a write changes every value."""
    writer = server.client()
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(CLIENTS)]
    try:
        for round_ in range(3):
            values = _values(round_)
            for key, value in values.items():
                writer.set(key, value, noreply=False)
            asked = [
                [[f"k{i}"], [f"k{(i + 1) % CLIENTS}", "absent", f"k{i}"], ["big", f"k{i}"] if i % 8 == 0 else [f"k{i}"]]
                for i in range(CLIENTS)
            ]
            for sock, gets in zip(socks, asked):
                sock.sendall(b"".join(f"get {' '.join(keys)}\r\n".encode() for keys in gets))
            for sock, gets in zip(socks, asked):
                expected = b"".join(_expected(keys, values) for keys in gets)
                assert _read(sock, len(expected)) == expected
    finally:
        for sock in socks:
            sock.close()


@pytest.fixture
def frozen(backend, settings):
    """``frozen(timeout)``: a container 'slow' whose cache is a memcached of the test's own
    (socket timeout ``timeout``), its key ``k`` cached; returns (that memcached, a socket
    switched to 'slow'). The default container stays on the shared cache."""
    started = []

    def start(timeout: float):
        cache = ServerProcess("memcached").start()
        started.append(cache)
        options = {"timeout": timeout, "connect_timeout": timeout}
        entry = {"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache", "OPTIONS": options}
        settings.CACHES = {**settings.CACHES, "frozen": {**entry, "LOCATION": cache.location}}
        served_container("default", KeyValue, key_columns="key", value_columns="value")
        served_container("slow", KeyValue, key_columns="key", value_columns="value", cache_alias="frozen")
        KeyValue.objects.create(key="k", value="v1")
        return cache

    yield start
    for cache in started:
        cache.kill()


def _slow_client(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    assert talk(sock, b"get @@slow\r\n", end=b"END\r\n").startswith(b"VALUE @@slow")
    for _ in range(2):  # a miss (the worker fills), then a hit on the loop
        assert talk(sock, b"get k\r\n", end=b"END\r\n") == b"VALUE k 0 2\r\nv1\r\nEND\r\n"
    return sock


@pytest.mark.caches("memcached")
def test_a_frozen_cache_holds_only_its_own_clients(start_server, frozen):
    """Before the loop's own I/O, the loop waited in recv() for the frozen cache: no other client was answered."""
    cache = frozen(timeout=60)
    server = start_server()
    slow = _slow_client(server)
    other = server.client()  # the default container, on the shared cache
    other.set("k2", "v2", noreply=False)
    assert other.get("k2") == b"v2"  # filled: its next gets are the loop's
    cache.freeze()
    try:
        slow.sendall(b"get k\r\n")  # its multi-get waits for the frozen cache
        for _ in range(3):
            assert other.get("k2") == b"v2"  # answered meanwhile (10 s client timeout)
        assert other.version()
        slow.setblocking(False)
        with pytest.raises(BlockingIOError):
            slow.recv(100)  # the frozen cache still holds its answer
        slow.setblocking(True)
    finally:
        cache.thaw()
    assert read_reply(slow, b"END\r\n") == b"VALUE k 0 2\r\nv1\r\nEND\r\n"
    slow.close()


@pytest.mark.caches("memcached")
def test_a_frozen_caches_clients_are_answered_from_the_database_after_its_timeout(start_server, frozen):
    cache = frozen(timeout=0.3)
    server = start_server()
    slow = _slow_client(server)
    cache.freeze()
    try:
        assert talk(slow, b"get k\r\n", end=b"END\r\n") == b"VALUE k 0 2\r\nv1\r\nEND\r\n"
        assert server.client().get("k") == b"v1"  # the default container, on the shared cache
    finally:
        cache.thaw()
    assert talk(slow, b"get k\r\n", end=b"END\r\n") == b"VALUE k 0 2\r\nv1\r\nEND\r\n"  # thawed
    slow.close()
