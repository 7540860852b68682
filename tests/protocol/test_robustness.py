"""Bad input over a raw socket: the protocol's error, other clients unaffected, no partial row."""

import socket
import time

import pytest

from cachelayer.protocol import parser
from tests.protocol.conftest import read_reply, served_container, talk
from tests.testapp.models import KeyValue

STALL = 0.5  # the servers below give up on a stalled command after this many seconds
LONG_STALL = 2.0  # ... where another client's whole exchange must fit inside the stall, on a busy machine too

pytestmark = pytest.mark.caches("locmem")  # protocol handling; the cache does not matter here


@pytest.fixture
def table(backend):
    served_container("default", KeyValue, key_columns="key", value_columns="value", flags_column="flags")


@pytest.mark.parametrize(
    "line, reply",
    [
        (b"bogus k\r\n", b"ERROR\r\n"),
        (b"\r\n", b"ERROR\r\n"),
        (b"set k 0 0\r\n", b"ERROR\r\n"),
        (b"set k zero 0 1\r\n", b"CLIENT_ERROR bad command line format\r\n"),
        (b"set k 0 0 -1\r\n", b"CLIENT_ERROR bad command line format\r\n"),
        (b"set k 4294967296 0 1\r\n", b"CLIENT_ERROR bad command line format\r\n"),
        (b"get " + b"k" * 251 + b"\r\n", b"CLIENT_ERROR bad command line format\r\n"),
        (b"incr k -1\r\n", b"CLIENT_ERROR invalid numeric delta argument\r\n"),
        (b"incr k 1_0\r\n", b"CLIENT_ERROR invalid numeric delta argument\r\n"),  # Python's int() takes it
        (b"decr k 18446744073709551616\r\n", b"CLIENT_ERROR invalid numeric delta argument\r\n"),
        (b"set k 0 0 1_0\r\n", b"CLIENT_ERROR bad command line format\r\n"),
        (b"delete k 10\r\n", b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"),
        (b"stats nonsense\r\n", b"ERROR\r\n"),
    ],
)
def test_malformed_lines(server, table, line, reply):
    sock = server.socket()
    assert talk(sock, line) == reply
    assert talk(sock, b"set k 3 0 2\r\nok\r\nget k\r\n", b"END\r\n") == b"STORED\r\nVALUE k 3 2\r\nok\r\nEND\r\n"


def test_bad_data_chunk_and_non_utf8_values(server, table):
    sock = server.socket()
    assert talk(sock, b"set k 0 0 2\r\nabcd\r\n", b"ERROR\r\n") == b"CLIENT_ERROR bad data chunk\r\nERROR\r\n"
    assert talk(sock, b"set k 0 0 2\r\n\xff\xfe\r\n").startswith(b"CLIENT_ERROR the value is not UTF-8")
    assert talk(sock, b"get k\r\n") == b"END\r\n"
    assert not KeyValue.objects.exists()


def test_oversized_value_is_swallowed(start_server, table):
    sock = start_server(item_size_max=1024).socket()
    big = b"x" * 5000
    assert talk(sock, b"set big 0 0 5000\r\n" + big + b"\r\n") == b"SERVER_ERROR object too large for cache\r\n"
    assert talk(sock, b"set big 0 0 5000 noreply\r\n" + big + b"\r\n") == b"SERVER_ERROR object too large for cache\r\n"
    assert talk(sock, b"get big\r\n") == b"END\r\n"  # the stream is still in step
    assert not KeyValue.objects.exists()


@pytest.mark.caches("memcached")
def test_value_over_the_cache_item_limit_under_cache_only(start_server, backend):
    served_container("default", KeyValue, "cache_only", key_columns="key", value_columns="value")
    sock = start_server(item_size_max=2 * 2**20).socket()
    value = b"x" * (2**20 - 100)  # under --item-size-max, over memcached's item once encoded
    assert talk(sock, b"set big 0 0 %d\r\n" % len(value) + value + b"\r\n") == parser.TOO_LARGE
    assert talk(sock, b"get big\r\n") == b"END\r\n"


def test_line_too_long_hangs_up(server, table):
    sock = server.socket()
    sock.sendall(b"get " + b"k" * 70000)
    assert read_reply(sock) == b"CLIENT_ERROR line too long\r\n"
    assert sock.recv(10) == b""  # closed


@pytest.mark.parametrize(
    "partial, reply",
    [
        (b"set k 0 0 5\r\nab", b"CLIENT_ERROR bad data chunk\r\n"),
        (b"get k", b"CLIENT_ERROR bad command line format\r\n"),
    ],
)
def test_stalled_client_is_answered_and_others_are_unaffected(start_server, table, partial, reply):
    server = start_server(read_timeout=LONG_STALL)
    stalled, other = server.socket(), server.socket()
    stalled.sendall(partial)
    assert talk(other, b"set k 0 0 2\r\nok\r\n") == b"STORED\r\n"
    timeout = stalled.gettimeout()
    stalled.settimeout(0)
    with pytest.raises(BlockingIOError):  # answered while the stalled client is still waited for
        stalled.recv(100)
    stalled.settimeout(timeout)
    assert read_reply(stalled) == reply
    assert stalled.recv(10) == b""
    assert KeyValue.objects.get(key="k").value == "ok"  # the stalled set wrote nothing


def test_disconnect_mid_value_writes_nothing(server, table):
    sock = server.socket()
    sock.sendall(b"set k 0 0 10\r\nabc")
    sock.close()
    time.sleep(0.1)
    assert talk(server.socket(), b"get k\r\n") == b"END\r\n"
    assert not KeyValue.objects.exists()


def test_too_many_connections(start_server, table):
    server = start_server(max_connections=1)
    first = server.socket()
    assert talk(first, b"version\r\n").startswith(b"VERSION ")
    second = server.socket()
    assert read_reply(second) == b"ERROR Too many open connections\r\n"
    assert talk(first, b"get k\r\n") == b"END\r\n"
    first.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the slot frees once the server saw the close
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as third:
            if talk(third, b"version\r\n").startswith(b"VERSION "):
                break
        time.sleep(0.05)
    else:
        pytest.fail("the connection slot was never freed")
