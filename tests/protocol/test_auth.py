"""cache_serve's authentication (memcached -Y), read-only users and the loopback rule.

Replies are memcached's (proto_text.c, 1.6): before a login every command
gets ``CLIENT_ERROR unauthenticated``; a login is any ``set`` whose data is
``<username> <password>``.
"""

import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from pymemcache.exceptions import MemcacheClientError

from cachelayer.protocol.auth import is_loopback
from demo_project.demo.models import DemoTest
from tests.helpers import ROOT, environment
from tests.protocol.conftest import read_reply, served_container, talk
from tests.testapp.models import KeyValue

START_TIMEOUT = 30  # seconds for a cache_serve process to say it listens


@pytest.fixture
def auth_file(tmp_path):
    path = tmp_path / "memcached-auth"
    path.write_text("alice:s3cret:with-colon\nreader:read-pw\n")  # the password runs to the end of the line
    return str(path)


@pytest.fixture
def table(backend):
    served_container("default", KeyValue, "caching", key_columns="key", value_columns="value")
    served_container("aaa", DemoTest, "caching", key_columns="c1", value_columns="c2")
    KeyValue.objects.create(key="k", value="kept")


def login(sock, user: str, password: str) -> bytes:
    token = f"{user} {password}".encode()
    return talk(sock, b"set auth 0 0 %d\r\n%s\r\n" % (len(token), token))


def test_an_unauthenticated_client_cannot_read_write_or_flush(table, start_server, auth_file):
    sock = start_server(auth_file=auth_file).socket()
    for request in [
        b"get k\r\n",
        b"gets k\r\n",
        b"get @@aaa\r\n",
        b"delete k\r\n",
        b"incr k 1\r\n",
        b"touch k 10\r\n",
        b"flush_all\r\n",
        b"stats\r\n",
        b"version\r\n",
        b"add k 0 0 4\r\nlost\r\n",
        b"cas k 0 0 4 1\r\nlost\r\n",
    ]:
        assert talk(sock, request) == b"CLIENT_ERROR unauthenticated\r\n", request
    assert talk(sock, b"set k 0 0 4\r\nlost\r\n") == b"CLIENT_ERROR bad authentication token format\r\n"
    assert login(sock, "alice", "wrong") == b"CLIENT_ERROR authentication failure\r\n"
    assert login(sock, "alice", "s3cret") == b"CLIENT_ERROR authentication failure\r\n"  # a prefix is not it
    assert talk(sock, b"get k\r\n") == b"CLIENT_ERROR unauthenticated\r\n"
    assert list(KeyValue.objects.values_list("key", "value")) == [("k", "kept")]


def test_a_login_opens_the_connection_and_only_that_one(table, start_server, auth_file):
    server = start_server(auth_file=auth_file)
    sock = server.socket()
    assert login(sock, "alice", "s3cret:with-colon") == b"STORED\r\n"
    assert talk(sock, b"get k\r\n", end=b"END\r\n") == b"VALUE k 0 4\r\nkept\r\nEND\r\n"
    assert talk(sock, b"set k 0 0 3\r\nnew\r\n") == b"STORED\r\n"
    assert talk(server.socket(), b"get k\r\n") == b"CLIENT_ERROR unauthenticated\r\n"
    stats = talk(sock, b"stats\r\n", end=b"END\r\n")
    assert b"STAT auth_cmds 1\r\n" in stats and b"STAT auth_errors 0\r\n" in stats
    assert KeyValue.objects.get(key="k").value == "new"


def test_a_read_only_user_cannot_write(table, start_server, auth_file, settings):
    settings.CACHELAYER = {**settings.CACHELAYER, "PROTOCOL_ACCESS": {"reader": {"*": "read"}}}
    sock = start_server(auth_file=auth_file).socket()
    assert login(sock, "reader", "read-pw") == b"STORED\r\n"
    assert talk(sock, b"get k\r\n", end=b"END\r\n") == b"VALUE k 0 4\r\nkept\r\nEND\r\n"
    for request in [
        b"set k 0 0 4\r\nlost\r\n",
        b"add n 0 0 4\r\nlost\r\n",
        b"append k 0 0 1\r\nx\r\n",
        b"delete k\r\n",
        b"incr k 1\r\n",
        b"touch k 10\r\n",
        b"flush_all\r\n",
    ]:
        assert talk(sock, request) == b"CLIENT_ERROR container 'default' is read-only for this client\r\n", request
    assert list(KeyValue.objects.values_list("key", "value")) == [("k", "kept")]


def test_access_is_per_container(table, start_server, auth_file, settings):
    settings.CACHELAYER = {**settings.CACHELAYER, "PROTOCOL_ACCESS": {"reader": {"aaa": "write"}}}
    sock = start_server(auth_file=auth_file).socket()
    assert login(sock, "reader", "read-pw") == b"STORED\r\n"
    assert talk(sock, b"set @@aaa.x 0 0 1\r\n1\r\n") == b"STORED\r\n"
    assert talk(sock, b"get k\r\n") == b"END\r\n"  # a container it may not read holds nothing for it
    assert talk(sock, b"delete k\r\n") == b"CLIENT_ERROR container 'default' is not exposed\r\n"
    assert talk(sock, b"get @@default.k @@aaa.x\r\n", end=b"END\r\n") == b"VALUE @@aaa.x 0 1\r\n1\r\nEND\r\n"
    assert DemoTest.objects.get(c1="x").c2 == "1"


@pytest.fixture
def serve_process(auth_file, table):
    """``manage.py cache_serve --auth-file`` in a process of its own, on a free loopback port."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "cache_serve", "--port", "0", "--auth-file", auth_file],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    try:
        line = process.stdout.readline()  # "cache_serve listening on 127.0.0.1:PORT"
        assert "listening on 127.0.0.1:" in line, line + process.stderr.read() if process.poll() is not None else line
        yield int(line.rsplit(":", 1)[1])
    finally:
        process.terminate()
        process.wait(timeout=START_TIMEOUT)


@pytest.mark.caches("memcached")
def test_pymemcache_logs_in_to_a_cache_serve_process(serve_process):
    from pymemcache.client.base import Client

    stranger = Client(("127.0.0.1", serve_process), connect_timeout=5, timeout=10)
    with pytest.raises(MemcacheClientError, match="unauthenticated"):
        stranger.get("k")
    with pytest.raises(MemcacheClientError, match="unauthenticated"):
        stranger.delete("k", noreply=False)
    with pytest.raises(MemcacheClientError, match="authentication failure"):
        stranger.set("auth", "alice guess", noreply=False)
    alice = Client(("127.0.0.1", serve_process), connect_timeout=5, timeout=10)
    assert alice.set("auth", "alice s3cret:with-colon", noreply=False) is True  # memcached's text login
    assert alice.get("k") == b"kept"
    assert alice.set("k", "changed", noreply=False) is True
    assert KeyValue.objects.get(key="k").value == "changed"


def test_a_non_loopback_bind_without_authentication_is_refused(transactional_db):
    with pytest.raises(CommandError, match=r"will not listen on '0.0.0.0' without authentication.*--auth-file"):
        call_command("cache_serve", "--host", "0.0.0.0", "--port", "0")


def test_an_unreadable_auth_file_stops_cache_serve(transactional_db, tmp_path):
    with pytest.raises(CommandError, match="cannot read the auth file"):
        call_command("cache_serve", "--port", "0", "--auth-file", str(tmp_path / "missing"))
    (tmp_path / "bad").write_text("no colon here\n")
    with pytest.raises(CommandError, match="expected username:password"):
        call_command("cache_serve", "--port", "0", "--auth-file", str(tmp_path / "bad"))


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("", False),
        ("::", False),
        ("192.0.2.1", False),
    ],
)
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


def test_without_an_auth_file_a_loopback_client_needs_no_login(table, start_server):
    sock = start_server().socket()
    sock.sendall(b"get k\r\n")
    assert read_reply(sock, end=b"END\r\n") == b"VALUE k 0 4\r\nkept\r\nEND\r\n"
