"""cache_serve's database connections die for real (KILL from another connection)
and its clients carry on: the next command fails once at most."""

import pytest
from django.db import connection, connections

from tests.protocol.conftest import served_container, talk
from tests.testapp.models import KeyValue

VALUE = b"VALUE k 0 1\r\nv\r\nEND\r\n"


def connection_ids() -> set[int]:
    """Return the ids of the other connections to the test database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()")
        return {row[0] for row in cursor.fetchall()}


def kill(ids) -> None:
    with connection.cursor() as cursor:
        for connection_id in ids:
            cursor.execute(f"KILL {connection_id}")


@pytest.fixture
def killed(start_server, backend, on_mariadb):
    """``killed(batch_size)`` -> a raw client whose worker's database connection was just killed."""
    served_container("default", KeyValue, "db_only", key_columns="key", value_columns="value")  # every get reads SQL
    KeyValue.objects.create(key="k", value="v")

    def start(batch_size: int = 1):
        sock = start_server(batch_size=batch_size, commit_interval=30).socket()
        before = connection_ids()
        assert talk(sock, b"set w 0 0 1\r\nx\r\n") == b"STORED\r\n"  # opens a batch when batching
        assert talk(sock, b"get k\r\n", b"END\r\n") == VALUE
        worker = connection_ids() - before
        assert len(worker) == 1
        kill(worker)
        return sock

    return start


def commands(sock, rounds: int = 3) -> list[bytes]:
    """Return the replies to ``rounds`` pairs of a get (one SQL query) and a set."""
    replies = []
    for n in range(rounds):
        sock.sendall(b"get k\r\n")
        reply = b""
        while not reply.endswith(b"END\r\n") and not (reply.startswith(b"SERVER_ERROR") and reply.endswith(b"\r\n")):
            reply += sock.recv(65536) or pytest.fail(f"connection closed after {reply!r}")
        replies.append(reply)
        replies.append(talk(sock, b"set s%d 0 0 1\r\nx\r\n" % n))
    return replies


@pytest.mark.parametrize("batch_size", [1, 3])
def test_a_killed_database_connection_costs_one_reply_at_most(killed, batch_size):
    replies = commands(killed(batch_size))
    assert replies[0] in (VALUE, b"SERVER_ERROR (2013, 'Lost connection to server during query')\r\n")
    assert replies[1:] == [b"STORED\r\n", VALUE, b"STORED\r\n", VALUE, b"STORED\r\n"]


def test_with_health_checks_not_even_one(killed, monkeypatch):
    """CONN_HEALTH_CHECKS: the first query of each command pings a reused connection first."""
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", None)
    monkeypatch.setitem(connections.settings["default"], "CONN_HEALTH_CHECKS", True)
    assert commands(killed()) == [VALUE, b"STORED\r\n"] * 3
