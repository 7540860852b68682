"""cache_serve under load and abuse: binary requests, floods of idle sockets,
hundreds of clients on a few database workers, write batches against another writer."""

import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest
from django.db import connection

from tests.conftest import database_name
from tests.protocol.conftest import read_reply, served_container, talk
from tests.testapp.models import KeyValue

pytestmark = pytest.mark.caches("memcached")  # connection handling; one real cache is enough

BINARY_GET = struct.pack(">BBHBBHIIQ", 0x80, 0x00, 1, 0, 0, 0, 1, 0xDEADBEEF, 0) + b"k"  # magic, opcode, key...


@pytest.fixture
def table(backend):
    served_container("default", KeyValue, key_columns="key", value_columns="value")


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    """Return a socket connected to cache_serve from loopback address ``source``."""
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))


def test_a_binary_request_is_answered_within_a_second(server, table):
    sock = server.socket()
    sock.settimeout(1)
    started = time.monotonic()
    sock.sendall(BINARY_GET)
    reply = read_reply(sock, end=b"only")
    assert time.monotonic() - started < 1
    magic, opcode, _, _, _, status, length, opaque, _ = struct.unpack(">BBHBBHIIQ", reply[:24])
    assert (magic, opcode, status, opaque) == (0x81, 0x00, 0x81, 0xDEADBEEF)  # response, get, unknown command
    assert reply[24:] == b"cache_serve speaks the ASCII protocol only" and length == len(reply) - 24
    assert sock.recv(10) == b""  # and closed
    assert talk(server.socket(), b"version\r\n").startswith(b"VERSION ")


def test_memccapable_binary_does_not_hang(server, table):
    tool = shutil.which("memccapable") or pytest.fail("memccapable is missing: install libmemcached-tools")
    started = time.monotonic()
    run = subprocess.run(
        [tool, "-b", "-t", "5", "-h", "127.0.0.1", "-p", str(server.port)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 15, run.stdout + run.stderr
    assert run.returncode != 0  # every binary test is refused, at once


def test_one_peer_cannot_hold_every_slot(server, table):
    """The default limits: 1,024 connections, at most 256 of them from one address."""
    flood = [connect(server.port) for _ in range(1024)]
    try:
        assert talk(flood[0], b"version\r\n").startswith(b"VERSION ")
        assert read_reply(flood[-1]) == b"ERROR Too many open connections\r\n"  # past this peer's share
        other = connect(server.port, "127.0.0.2")
        assert talk(other, b"set k 0 0 2\r\nok\r\nget k\r\n", b"END\r\n") == b"STORED\r\nVALUE k 0 2\r\nok\r\nEND\r\n"
        assert b"STAT rejected_connections 768\r\n" in talk(other, b"stats\r\n", b"END\r\n")  # 1,024 - 256
    finally:
        for sock in flood:
            sock.close()


def test_idle_connections_are_closed_after_the_timeout(start_server, table):
    server = start_server(idle_timeout=0.5)
    idle, busy = server.socket(), server.socket()
    started = time.monotonic()
    while time.monotonic() - started < 1.5:  # a client that keeps talking stays
        assert talk(busy, b"version\r\n").startswith(b"VERSION ")
        time.sleep(0.1)
    assert idle.recv(10) == b""  # closed, with nothing said
    assert time.monotonic() - started < 2


def processlist() -> int:
    """Return how many other connections the test database has now (MariaDB)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()"
        )
        return cursor.fetchone()[0]


def test_500_clients_share_a_few_database_workers(serve_process, backend):
    """Every client reads SQL (db_only); the server still runs a bounded number of
    threads and database connections, and answers every client."""
    served_container("default", KeyValue, "db_only", key_columns="key", value_columns="value")
    KeyValue.objects.create(key="k", value="v")
    server = serve_process()  # --db-workers 4 by default
    assert talk(connect(server.port), b"get k\r\n", b"END\r\n") == b"VALUE k 0 1\r\nv\r\nEND\r\n"
    threads = server.threads()
    clients = [connect(server.port, f"127.0.0.{2 + n % 4}") for n in range(500)]  # under the per-peer limit
    for sock in clients:
        sock.sendall(b"get k\r\n")
    assert [read_reply(sock, b"END\r\n") for sock in clients] == [b"VALUE k 0 1\r\nv\r\nEND\r\n"] * 500
    assert server.threads() <= max(threads, 1 + 4 + 1)  # the loop, the workers, asyncio's own
    if database_name() == "mariadb":
        assert processlist() <= 4
    assert server.stop() == 0  # SIGTERM: a clean stop, clients still connected
    if database_name() == "mariadb":  # every worker closed its connection (the server drops it a moment later)
        deadline = time.monotonic() + 5
        while processlist() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processlist() == 0
    for sock in clients:
        sock.close()


def test_a_write_batch_holds_a_row_lock_for_a_bounded_time(start_server, table, on_mariadb):
    """A batch commits within the default --commit-interval however long its client
    stays silent: another writer of the same row waits no longer than that."""
    KeyValue.objects.create(key="k", value="old")
    batched = start_server(batch_size=100).client()
    batched.set("k", "batched", noreply=False)  # the row is locked until the batch commits
    finished = {}

    def other_writer():
        started = time.monotonic()
        KeyValue.objects.filter(key="k").update(value="orm")  # waits for the row lock
        finished["after"] = time.monotonic() - started
        connection.close()

    thread = threading.Thread(target=other_writer)
    thread.start()
    thread.join(10)
    assert finished["after"] < 1.0
    assert KeyValue.objects.get(key="k").value == "orm"


def test_a_batch_commits_before_its_worker_runs_another_clients_command(start_server, table, on_mariadb):
    """One database worker, two clients: the second client's command does not wait
    --commit-interval for the first client's batch, nor run inside it."""
    server = start_server(batch_size=100, commit_interval=30, db_workers=1)
    writer, reader = server.client(), server.client()
    writer.set("k", "batched", noreply=False)
    assert not KeyValue.objects.exists()  # the batch is open
    started = time.monotonic()
    assert reader.get("k") == b"batched"  # committed first, then read: not the batch's own view
    assert time.monotonic() - started < 1
    assert KeyValue.objects.get(key="k").value == "batched"
    writer.set("k", "again", noreply=False)  # a new batch on the same worker
    assert KeyValue.objects.get(key="k").value == "batched"
