"""cache_follow as a long-running process: live latency, SIGKILL, server restarts,
cache outages, admin edits, and the errors it gives at start."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connections

from cachelayer.engine.registry import container_name
from cachelayer.models import Container, FollowerPosition, OutboxEntry
from tests.follow.conftest import Processes, own_memcached, pytestmark_follow, seconds_until
from tests.follow.mariadb import PLAIN_USER
from tests.testapp.models import Item, Pair

pytestmark = [*pytestmark_follow[:2], pytest.mark.caches("memcached"), pytest.mark.slow]  # cache_follow processes


def value(key):
    try:
        return Item.cached.get(key).value
    except Item.DoesNotExist:
        return None


@pytest.fixture
def running(followed):
    """Start following cache_follow processes on request; yield ``(binlog, start)``; kill them at teardown."""
    processes = Processes(followed, "binlog")
    yield followed, processes.start
    processes.kill()


def test_console_write_is_served_within_a_second(running):
    binlog, start = running
    Item.objects.using("binlog").create(id=1, value=0)
    start()
    for n in range(1, 4):
        assert value(1) == n - 1
        binlog.sql(f"UPDATE testapp_item SET value = {n} WHERE id = 1")
        assert seconds_until(n, lambda: value(1), 1.0) < 1.0


def test_sigkill_while_writes_continue_misses_nothing(running):
    binlog, start = running
    Item.objects.using("binlog").bulk_create([Item(id=i, value=0) for i in range(1, 21)])
    process = start()
    seconds_until(0, lambda: value(20), 5)
    for i in range(1, 11):
        binlog.sql(f"UPDATE testapp_item SET value = 1 WHERE id = {i}")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert [value(i) for i in range(1, 21)]  # warm every key while nobody follows
    binlog.sql(
        "UPDATE testapp_item SET value = 2 WHERE id BETWEEN 11 AND 15; FLUSH BINARY LOGS;"
        "UPDATE testapp_item SET value = 3 WHERE id BETWEEN 16 AND 20"
    )
    start()
    expected = [1] * 10 + [2] * 5 + [3] * 5
    assert seconds_until(expected, lambda: [value(i) for i in range(1, 21)], 5.0) < 5.0


def test_mariadb_restart_under_a_running_follower(running, binlog_server):
    binlog, start = running
    Item.objects.using("binlog").create(id=1, value=0)
    start()
    seconds_until(0, lambda: value(1), 5)
    binlog_server.restart()
    connections["binlog"].close()
    binlog.sql("UPDATE testapp_item SET value = 5 WHERE id = 1")
    seconds_until(5, lambda: value(1), 15)


def test_memcached_down_while_events_arrive(settings, running):
    binlog, start = running
    with own_memcached(settings, binlog) as server:
        Item.objects.using("binlog").create(id=1, value=0)
        start()
        seconds_until(0, lambda: value(1), 5)
        server.freeze()  # keeps the stale payload: only a delivered invalidation can outdate it
        binlog.sql("UPDATE testapp_item SET value = 7 WHERE id = 1")
        seconds_until(True, lambda: OutboxEntry.objects.filter(container=container_name(Item)).exists(), 10)
        server.thaw()  # the follower replays its outbox on its next look at the cache
        seconds_until(7, lambda: value(1), 10)
        binlog.sql("UPDATE testapp_item SET value = 8 WHERE id = 1")
        seconds_until(8, lambda: value(1), 5)


def test_container_added_in_the_admin_is_followed(running):
    binlog, start = running
    pk = str(Pair.objects.using("binlog").create(left="a", right=1, value=1).pk)
    start()
    Container.objects.create(
        name="pairs_by_value",
        content_type=ContentType.objects.get_for_model(Pair),
        database="binlog",
        key_columns="value",
    )  # post_save bumps the configuration version: every process reloads
    from cachelayer import repository

    by_value = repository("pairs_by_value").get  # "value" is not unique: an index container, a get answers the pks
    time.sleep(1.5)  # the follower's next look at the configuration version
    assert (by_value("1"), by_value("2")) == (pk, None)  # both lists cached now (the second empty)
    binlog.sql("UPDATE testapp_pair SET value = 2")  # the row leaves one list and joins the other
    seconds_until((None, pk), lambda: (by_value("1"), by_value("2")), 5)


def test_missing_binlog_is_one_clear_error(followed):
    FollowerPosition.objects.filter(database="binlog").update(log_file="binlog.000000", log_pos=4)
    done = followed.follow()
    lines = [line for line in done.stderr.splitlines() if "binlog.000000" in line]
    assert len(lines) == 1 and "no longer in the binary logs" in lines[0] and "bumped the generation" in lines[0]
    assert FollowerPosition.objects.get(database="binlog").log_file != "binlog.000000"


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("SET GLOBAL binlog_format = 'STATEMENT'", "SET GLOBAL binlog_format = 'ROW'"),
        ("SET GLOBAL binlog_row_image = 'MINIMAL'", "SET GLOBAL binlog_row_image = 'FULL'"),
    ],
)
def test_server_settings_are_named(binlog, binlog_server, setup, expected):
    binlog_server.sql(setup)
    try:
        done = binlog.follow(check=False)
    finally:
        binlog_server.sql("SET GLOBAL binlog_format = 'ROW'; SET GLOBAL binlog_row_image = 'FULL'")
    assert done.returncode == 1 and expected in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_missing_grants_are_named(binlog):
    url = binlog.env["CACHELAYER_TEST_BINLOG_DB"].replace("//cachelayer:", f"//{PLAIN_USER}:")
    binlog.env["CACHELAYER_TEST_BINLOG_DB"] = url
    done = binlog.follow(check=False)
    assert done.returncode == 1 and "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.*" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_binlog_off_is_named(binlog):
    """The shared MariaDB runs without a binlog: following it says how to turn it on."""
    command = [part if part != "binlog" else "default" for part in binlog.command("--once")]  # --database default
    done = subprocess.run(command, capture_output=True, text=True, env=binlog.env, timeout=60)
    assert done.returncode == 1 and "log_bin" in done.stderr and len(done.stderr.strip().splitlines()) == 1
