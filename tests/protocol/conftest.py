"""cache_serve in a thread of the test process, on an ephemeral loopback port.

The server's worker threads open their own database connections, hence
``backend`` (transactional_db): they see committed rows only.
"""

import asyncio
import socket
import threading

import pytest
from pymemcache.client.base import Client

from cachelayer.protocol.server import serve
from demo_project.demo.models import DemoTest
from tests.layer.test_repository import make_container
from tests.testapp.models import KeyValue

START_TIMEOUT = 10  # seconds to wait for the server thread to listen / stop


class ServerThread:
    """Run ``serve(**options)`` on its own event loop in a daemon thread."""

    def __init__(self, **options):
        self.options = {"port": 0, **options}
        self.port = None
        self._listening = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _main(self):
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        await serve(ready=self._ready, stop=self._stop, **self.options)

    def _ready(self, server):
        self.port = server.port
        self._listening.set()

    def start(self) -> "ServerThread":
        self._thread.start()
        assert self._listening.wait(START_TIMEOUT), "cache_serve did not start"
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(START_TIMEOUT)
        assert not self._thread.is_alive(), "cache_serve did not stop"

    def client(self) -> Client:
        return Client(("127.0.0.1", self.port), connect_timeout=5, timeout=10)

    def socket(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return sock


def served_container(name, model, policy="caching", **mapping):
    """Create a container cache_serve serves (containers are not exposed by default)."""
    return make_container(name, model, policy, exposed=True, **mapping)


@pytest.fixture
def start_server(backend):
    """Return ``start(**options) -> ServerThread``; every server stops at teardown."""
    servers = []

    def start(**options):
        servers.append(ServerThread(**options).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server):
    return start_server()


@pytest.fixture(params=["caching", "db_only", "cache_only"])
def policy(request, backend):
    """The default container (KeyValue, every memcached column mapped) under each store policy."""
    served_container(
        "default",
        KeyValue,
        request.param,
        key_columns="key",
        value_columns="value",
        flags_column="flags",
        cas_column="cas",
        expire_time_column="expires",
    )
    return request.param


@pytest.fixture
def demo(backend):
    """innodb_memcache's demo container 'aaa' (DemoTest), next to the default one."""
    served_container("default", KeyValue, key_columns="key", value_columns="value", cas_column="cas")
    served_container(
        "aaa",
        DemoTest,
        key_columns="c1",
        value_columns="c2",
        flags_column="c3",
        cas_column="c4",
        expire_time_column="c5",
    )


def read_reply(sock: socket.socket, end: bytes = b"\r\n", limit: int = 1 << 20) -> bytes:
    """Read from a raw socket until the data ends with ``end`` (or the peer closes)."""
    data = b""
    while not data.endswith(end) and len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def talk(sock: socket.socket, request: bytes, end: bytes = b"\r\n") -> bytes:
    """Send ``request`` on a raw socket and read the reply up to ``end``."""
    sock.sendall(request)
    return read_reply(sock, end)


class ServerProcess:
    """``manage.py cache_serve`` in a process of its own, on a free loopback port."""

    def __init__(self, *options: str):
        import subprocess
        import sys

        from tests.helpers import ROOT, environment

        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "cache_serve", "--port", "0", *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(),
        )
        line = self.process.stdout.readline()  # "cache_serve listening on 127.0.0.1:PORT"
        if not line.startswith("cache_serve listening on "):
            self.stop()
            pytest.fail(f"cache_serve did not start: {line!r} {self.process.stderr.read()}")
        self.port = int(line.rsplit(":", 1)[1])

    def threads(self) -> int:
        """Return the number of threads the server process runs now."""
        import os

        return len(os.listdir(f"/proc/{self.process.pid}/task"))

    def stop(self) -> int:
        """Send SIGTERM (as a process manager does) and return the exit code."""
        self.process.terminate()
        return self.process.wait(START_TIMEOUT)


@pytest.fixture
def serve_process(backend):
    """Return ``start(*options) -> ServerProcess``; every process stops at teardown."""
    processes = []

    def start(*options):
        processes.append(ServerProcess(*options))
        return processes[-1]

    yield start
    for process in processes:
        if process.process.poll() is None:
            process.stop()
