"""Every command through a real memcached client (pymemcache), per store policy."""

import threading
import time

import pytest
from pymemcache.exceptions import MemcacheClientError, MemcacheServerError

import cachelayer
from cachelayer.models import Container
from demo_project.demo.models import Country, DemoTest
from tests.conftest import database_name
from tests.protocol.conftest import read_reply, served_container, talk
from tests.testapp.models import KeyValue, Memo


def in_db(key):
    return KeyValue.objects.filter(key=key).values_list("value", flat=True).first()


def test_storage_and_retrieval(server, policy):
    client = server.client()
    assert client.get("k") is None
    assert client.set("k", "hello", expire=0, noreply=False) is True
    assert client.get("k") == b"hello"
    assert in_db("k") == (None if policy == "cache_only" else "hello")
    assert client.add("k", "other", noreply=False) is False
    assert client.add("fresh", "new", noreply=False) is True
    assert client.replace("k", "world", noreply=False) is True
    assert client.replace("absent", "x", noreply=False) is False
    assert client.append("k", ">", noreply=False) and client.prepend("k", "<", noreply=False)
    assert client.get_many(["k", "fresh", "absent"]) == {"k": b"<world>", "fresh": b"new"}
    client.set("flagged", "v", flags=7, noreply=False)
    if policy != "cache_only":
        assert KeyValue.objects.get(key="flagged").flags == 7
    assert client.delete("k", noreply=False) is True
    assert client.delete("k", noreply=False) is False
    assert client.get("k") is None


def test_noreply_writes(server, policy):
    client = server.client()
    client.set("k", "1", noreply=True)
    client.incr("k", 4, noreply=True)
    client.append("k", "0", noreply=True)
    assert client.get("k") == b"50"  # replies did not desynchronise the stream
    client.delete("k", noreply=True)
    assert client.get("k") is None


def test_cas(server, policy):
    client = server.client()
    assert client.cas("k", "v", 1) is None  # NOT_FOUND
    client.set("k", "one", noreply=False)
    value, token = client.gets("k")
    assert value == b"one" and token
    assert client.cas("k", "two", token) is True
    assert client.cas("k", "three", token) is False  # EXISTS
    assert client.get("k") == b"two"


def test_incr_decr(server, policy):
    client = server.client()
    assert client.incr("n", 1) is None
    client.set("n", "10", noreply=False)
    assert client.incr("n", 5) == 15
    assert client.decr("n", 20) == 0
    client.set("word", "abc", noreply=False)
    with pytest.raises(MemcacheClientError, match="cannot increment or decrement non-numeric value"):
        client.incr("word", 1)


def test_incr_reads_values_as_memcached_does(server, policy):
    """The replies memcached 1.6 gives for these values (tests/layer/test_repository.py has more)."""
    client = server.client()
    for value in ["\u00b2", "\u0663", str(2**64)]:
        client.set("n", value.encode(), noreply=False)
        with pytest.raises(MemcacheClientError, match="cannot increment or decrement non-numeric value"):
            client.incr("n", 1)
        assert client.get("n") == value.encode()
    client.set("n", "12 abc", noreply=False)
    assert client.incr("n", 1) == 13
    client.set("n", str(2**64 - 1), noreply=False)
    assert client.incr("n", 2) == 1


def test_touch_flush_and_the_rest(server, policy):
    client = server.client()
    client.set("k", "v", expire=100, noreply=False)
    assert client.touch("k", -1, noreply=False) is True
    assert client.get("k") is None
    assert client.touch("missing", 10, noreply=False) is False
    client.set("a", "1", noreply=False)
    assert client.flush_all(noreply=False) is True
    assert client.get("a") is None
    assert client.version().startswith(b"1.6")
    stats = client.stats()
    assert stats[b"cmd_get"] == 2 and stats[b"curr_connections"] == 1
    assert b"default:hits" in client.stats("containers")
    client.quit()


@pytest.mark.slow  # waits for the delays in real time
def test_delayed_flush_all(server, policy):
    client = server.client()
    client.set("a", "1", noreply=False)
    assert client.flush_all(delay=1, noreply=False) is True
    assert client.get("a") == b"1"
    deadline = time.monotonic() + 5
    while client.get("a") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.get("a") is None


@pytest.mark.slow  # waits for the delays in real time
def test_delayed_flush_all_keeps_one_pending_flush(server, backend):
    """As memcached's single flush time: a later flush_all replaces a pending one,
    and thousands of delayed flushes cost one thread, not one each."""
    served_container("default", KeyValue, key_columns="key", value_columns="value")
    client, sock = server.client(), server.socket()
    client.set("a", "1", noreply=False)
    assert talk(sock, b"version\r\n").startswith(b"VERSION")  # both connections' workers exist
    threads = unpooled_threads()
    started = time.monotonic()
    count = 3000
    sock.sendall(b"flush_all 60\r\n" * count)  # pipelined: no reply is awaited in between
    assert read_reply(sock, b"OK\r\n" * count) == b"OK\r\n" * count
    assert unpooled_threads() == threads
    assert client.get("a") == b"1"

    # sooner: replaces the pending 60 s. The wait is bounded by when that one would
    # run, not by a guess at how fast a loaded machine answers 3,000 flushes.
    assert talk(sock, b"flush_all 1\r\n") == b"OK\r\n"
    while client.get("a") is not None and time.monotonic() < started + 50:
        time.sleep(0.05)
    assert client.get("a") is None

    client.set("b", "1", noreply=False)
    assert talk(sock, b"flush_all 1\r\nflush_all 30\r\n", b"OK\r\nOK\r\n") == b"OK\r\nOK\r\n"  # later: replaces the 1 s
    time.sleep(1.5)
    assert client.get("b") == b"1"

    assert talk(sock, b"flush_all 1\r\nflush_all 0\r\n", b"OK\r\nOK\r\n") == b"OK\r\nOK\r\n"  # now: replaces the 1 s
    assert client.get("b") is None
    client.set("c", "1", noreply=False)
    time.sleep(1.5)
    assert client.get("c") == b"1"
    assert unpooled_threads() == threads


def unpooled_threads() -> set[str]:
    """The threads outside the server's bounded pools (its database workers and the
    event loop's default executor, which grow with load up to their own limits)."""
    pooled = ("cache_serve-db-", "asyncio_")
    return {thread.name for thread in threading.enumerate() if not thread.name.startswith(pooled)}


def test_protocol_writes_and_orm_writes_meet(server, backend):
    served_container("default", KeyValue, key_columns="key", value_columns="value")
    client = server.client()
    client.set("k", "from-protocol", noreply=False)
    row = KeyValue.objects.get(key="k")
    assert row.value == "from-protocol"
    assert client.get("k") == b"from-protocol"  # cached now
    row.value = "from-orm"
    row.save()
    assert client.get("k") == b"from-orm"


def test_container_switching(server, demo):
    client = server.client()
    client.set("k", "in-default", noreply=False)
    client.set("@@aaa.k", "in-aaa", noreply=False)
    assert DemoTest.objects.get(c1="k").c2 == "in-aaa"
    assert KeyValue.objects.get(key="k").value == "in-default"
    assert client.get("@@aaa.k") == b"in-aaa"
    assert client.get("@@aaa") == b"demo_test"  # switches this connection to 'aaa'
    assert client.get("k") == b"in-aaa"
    assert server.client().get("k") == b"in-default"  # other connections keep the default
    assert client.get("@@default.k") == b"in-default"


def test_unexposed_and_unknown_containers(server, demo):
    Container.objects.filter(name="aaa").update(exposed=False)
    DemoTest.objects.create(c1="k", c2="secret")
    client = server.client()
    assert client.get("@@aaa.k") is None
    assert client.get("@@nope.k") is None
    with pytest.raises(MemcacheClientError, match="not exposed"):
        client.set("@@aaa.k", "x", noreply=False)
    client.get("@@aaa")  # not a switch: the connection stays on the default container
    assert client.get("k") is None
    assert DemoTest.objects.get(c1="k").c2 == "secret"


def test_stats_containers_lists_exposed_containers_only(server, demo):
    container = Container.objects.get(name="aaa")
    container.exposed = False
    container.save()
    assert cachelayer.repository("aaa").get("k") is None  # counted in this (the server's) process
    client = server.client()
    assert client.get("k") is None
    stats = client.stats("containers")
    assert b"default:misses" in stats
    assert [name for name in stats if name.startswith(b"aaa:")] == []


def test_multi_column_values(server, backend):
    served_container("default", Country, key_columns="country", value_columns="population|area_sq_km|drive_side")
    client = server.client()
    assert client.add("Narnia", "1000|50|L", noreply=False) is True
    row = Country.objects.get(country="Narnia")
    assert (row.population, row.area_sq_km, row.drive_side) == (1000, 50, "L")
    assert client.get("Narnia") == b"1000|50|L"
    assert client.set("Oz", "7|8", noreply=False) is True  # drive_side: its default
    assert Country.objects.get(country="Oz").drive_side == "R"
    served_container("memos", Memo, key_columns="code", value_columns="priority|text")
    with pytest.raises(MemcacheClientError, match="NOT NULL column 'text'"):
        client.set("@@memos.m1", "5", noreply=False)
    assert not Memo.objects.filter(code="m1").exists()


@pytest.mark.parametrize("operation", ["get", "set", "delete", "flush"])
def test_disabled_policy_is_a_server_error_naming_the_operation(server, backend, operation):
    served_container("default", KeyValue, key_columns="key", value_columns="value")
    from cachelayer.models import CachePolicy

    CachePolicy.objects.filter(policy_name="default_policy").update(**{f"{operation}_policy": "disabled"})
    Container.objects.get(name="default").save()  # announce the edit
    client = server.client()
    call = {
        "get": lambda: client.get("k"),
        "set": lambda: client.set("k", "v", noreply=False),
        "delete": lambda: client.delete("k", noreply=False),
        "flush": lambda: client.flush_all(noreply=False),
    }
    with pytest.raises(MemcacheServerError, match=f"'{operation}' is disabled on container 'default'"):
        call[operation]()
    assert not KeyValue.objects.exists()


def test_no_write_batches_on_sqlite(start_server, backend):
    if database_name() != "sqlite":
        pytest.skip("SQLite only: MariaDB batches (below)")
    served_container("default", KeyValue, key_columns="key", value_columns="value")
    client = start_server(batch_size=3, commit_interval=30).client()
    client.set("a", "1", noreply=False)
    assert KeyValue.objects.get(key="a").value == "1"  # committed at once


def test_write_batches_commit_every_n_writes(start_server, backend, on_server_database):
    served_container("default", KeyValue, key_columns="key", value_columns="value")
    client = start_server(batch_size=3, commit_interval=30).client()
    client.set("a", "1", noreply=False)
    client.set("b", "2", noreply=False)
    assert client.get("a") == b"1"  # the writing connection reads its own writes
    assert not KeyValue.objects.exists()  # not committed yet
    client.set("c", "3", noreply=False)
    assert KeyValue.objects.count() == 3


def test_write_batches_commit_after_the_interval(start_server, backend, on_server_database):
    served_container("default", KeyValue, key_columns="key", value_columns="value")
    client = start_server(batch_size=100, commit_interval=0.3).client()
    client.set("a", "1", noreply=False)
    deadline = time.monotonic() + 5
    while not KeyValue.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert KeyValue.objects.get(key="a").value == "1"


def test_batched_write_invalidates_on_commit(start_server, backend, on_server_database):
    served_container("default", KeyValue, key_columns="key", value_columns="value")
    KeyValue.objects.create(key="k", value="old")
    server = start_server(batch_size=2, commit_interval=30)
    reader, writer = server.client(), server.client()
    assert reader.get("k") == b"old"  # cached
    writer.set("k", "new", noreply=False)
    assert reader.get("k") == b"old"  # uncommitted
    writer.set("other", "x", noreply=False)  # second write: the batch commits
    assert reader.get("k") == b"new"


def test_a_key_in_another_form_reads_and_writes_the_row_the_database_holds_equal(server, policy):
    """cache_serve keys are canonical too: on MariaDB (utf8mb4_general_ci) ``KEY`` is the row ``key``."""
    if policy == "cache_only":
        pytest.skip("the database holds no row")
    client = server.client()
    client.set("key", "one", noreply=False)
    assert client.get("key") == b"one"  # cached
    expected = in_db("KEY")
    assert client.get("KEY") == (None if expected is None else expected.encode())
    KeyValue(key="KEY", value="two").save()  # MariaDB: updates the row key; SQLite, PostgreSQL: another row
    assert (client.get("key"), client.get("KEY")) == (b"two" if in_db("key") == "two" else b"one", b"two")
    client.set("KEY", "three", noreply=False)
    assert client.get("key") == in_db("key").encode()
