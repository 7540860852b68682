"""cache_follow on PostgreSQL as a long-running process: live latency, SIGKILL and resume from
the slot, health under SIGSTOP, a cache outage, an invalidated slot, and the errors it gives at
start (slot, REPLICA IDENTITY, grants)."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from cachelayer.engine.registry import container_name
from cachelayer.models import OutboxEntry
from cachelayer.tasks.follow import progress
from tests.faults.servers import stop
from tests.follow.conftest import Processes, own_memcached, pytestmark_wal, seconds_until
from tests.follow.postgres import PLAIN_USER
from tests.follow.test_health import status
from tests.follow.test_process import value
from tests.helpers import manage
from tests.testapp.models import Item

pytestmark = pytestmark_wal


@pytest.fixture
def running(walled):
    """Start following cache_follow processes on request; yield ``(wal, start)``; kill them at teardown."""
    processes = Processes(walled, "wal")
    yield walled, processes.start
    processes.kill()


def health() -> dict:
    (row,) = [row for row in progress.status() if row["database"] == "wal"]
    return row


def test_raw_write_is_served_within_a_second_and_sigkill_misses_nothing(running):
    wal, start = running
    Item.objects.using("wal").bulk_create([Item(id=i, value=0) for i in range(1, 11)])
    process = start()
    seconds_until([0] * 10, lambda: [value(i) for i in range(1, 11)], 5)
    for n in (1, 2):
        wal.sql(f"UPDATE testapp_item SET value = {n} WHERE id = 1")
        assert seconds_until(n, lambda: value(1), 1.0) < 1.0
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert [value(i) for i in range(1, 11)] == [2] + [0] * 9  # warm every key while nobody follows
    wal.sql("UPDATE testapp_item SET value = 5 WHERE id BETWEEN 2 AND 5")
    wal.sql(
        "BEGIN; DELETE FROM testapp_item WHERE id = 6; INSERT INTO testapp_item (id, value) VALUES (11, 11); COMMIT"
    )
    assert value(2) == 0 and value(6) == 0  # stale until a follower runs again
    start()  # resumes from the slot, where the killed one had confirmed
    expected = [2, 5, 5, 5, 5, None, 0, 0, 0, 0, 11]
    seconds_until(expected, lambda: [value(i) for i in range(1, 12)], 5.0)


def test_a_stopped_follower_is_stale_then_ok_again(running):
    from cachelayer.tasks.follow.health import STALE_AFTER

    wal, start = running
    Item.objects.using("wal").create(id=1, value=0)
    process = start()
    seconds_until("ok", lambda: health()["state"], 10)
    # Stopped once it reads the slot (its session's last poll is the lag's clock): a process
    # stopped before it connects has no session, and only its heartbeat tells (down, after DOWN_AFTER).
    assert value(1) == 0  # cached: only the follower can make it -1
    wal.sql("UPDATE testapp_item SET value = -1 WHERE id = 1")
    seconds_until(-1, lambda: value(1), 10)
    stop(process)
    for n in range(1, 4):
        wal.sql(f"UPDATE testapp_item SET value = {n} WHERE id = 1")
    time.sleep(STALE_AFTER + 1)
    done = status(wal)
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("wal:")]
    assert line.startswith("wal: stale")
    (row,) = [row for row in json.loads(status(wal, "--json").stdout) if row["database"] == "wal"]
    assert row["state"] == "stale" and row["lag_seconds"] > STALE_AFTER and row["lag_bytes"] > 0
    assert "follower of 'wal': stale" in manage("cache_stats", env=wal.env).stdout
    process.send_signal(signal.SIGCONT)  # it catches up: healthy again, measured the same way
    seconds_until(0, lambda: status(wal).returncode, 10)
    assert seconds_until(3, lambda: value(1), 5) < 5


def caught_up(wal) -> None:
    """Wait until the slot confirmed the WAL written so far: the follower delivered every commit in it."""
    written = int(wal.sql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"))
    confirmed = (
        f"SELECT pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint >= {written} FROM pg_replication_slots "
        "WHERE slot_name = 'cachelayer_wal'"
    )
    seconds_until("True", lambda: wal.sql(confirmed), 10)


def test_memcached_down_while_events_arrive(settings, running):
    """At least once: the change is delivered (to the outbox) before the slot moves past it."""
    wal, start = running
    with own_memcached(settings, wal) as server:
        Item.objects.using("wal").create(id=1, value=0)
        start()
        caught_up(wal)  # the INSERT's invalidation is delivered: it cannot outdate the value cached next
        assert value(1) == 0
        server.freeze()  # keeps the stale payload: only a delivered invalidation can outdate it
        wal.sql("UPDATE testapp_item SET value = 7 WHERE id = 1")
        caught_up(wal)
        assert OutboxEntry.objects.filter(container=container_name(Item)).exists()  # kept before the slot moved
        server.thaw()  # the follower replays its outbox on its next look at the cache
        seconds_until(7, lambda: value(1), 10)
        wal.sql("UPDATE testapp_item SET value = 8 WHERE id = 1")
        seconds_until(8, lambda: value(1), 5)


def lose_slot(wal) -> None:
    """Invalidate the slot as PostgreSQL does when it holds more WAL than max_slot_wal_keep_size: keep
    none, fill new WAL segments, checkpoint (again while the checkpointer has not read the setting)."""
    wal.server.psql("ALTER SYSTEM SET max_slot_wal_keep_size = 0")
    wal.server.psql("SELECT pg_reload_conf()")
    status = "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'cachelayer_wal'"
    for _ in range(20):
        if wal.sql(status) == "lost":
            return
        for _ in range(2):
            wal.sql("SELECT txid_current()")  # some WAL, so that the switch starts a new segment
            wal.server.psql("SELECT pg_switch_wal()")
        wal.server.psql("CHECKPOINT")
    pytest.fail(f"the slot is still {wal.sql(status)!r}")


def test_an_invalidated_slot_is_one_clear_error_and_recreating_it_bumps_every_generation(running):
    wal, start = running
    Item.objects.using("wal").create(id=1, value=0)
    process = start()
    caught_up(wal)  # the INSERT's invalidation is delivered: it cannot outdate the value cached next
    assert value(1) == 0
    stop(process)  # a stalled follower: its slot holds the WAL from here on
    wal.sql("UPDATE testapp_item SET value = 1 WHERE id = 1")
    try:
        lose_slot(wal)
        process.send_signal(signal.SIGCONT)
        _, stderr = process.communicate(timeout=30)
        lines = [line for line in stderr.splitlines() if "cachelayer_wal" in line]
        assert process.returncode == 1 and "Traceback" not in stderr and len(lines) == 1, stderr
        assert "replication slot cachelayer_wal" in lines[0] and "was invalidated" in lines[0]
        assert "--drop-slot then --create-slot" in lines[0]
        error = follow_error(wal)  # and at the next start, before reading anything
        assert "replication slot cachelayer_wal" in error and "was invalidated" in error
        assert value(1) == 0  # stale: the update was in the WAL the slot lost
    finally:
        wal.server.psql("ALTER SYSTEM RESET max_slot_wal_keep_size")
        wal.server.psql("SELECT pg_reload_conf()")
        for step in ("--drop-slot", "--create-slot"):
            done = subprocess.run(wal.command(step), capture_output=True, text=True, env=wal.env, timeout=60)
            assert done.returncode == 0, done.stderr
    assert "bumped" in wal.follow().stderr  # the position was forgotten: every generation bumped
    assert value(1) == 1


def follow_error(wal, *args: str) -> str:
    done = wal.follow(*args, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr


def test_insufficient_replica_identity_is_refused_naming_the_table(wal):
    wal.sql("ALTER TABLE testapp_slugged REPLICA IDENTITY DEFAULT")
    try:
        error = follow_error(wal)
        assert "testapp_slugged has REPLICA IDENTITY DEFAULT" in error and "old slug" in error
        assert "--replica-identity-full" in error and "testapp_item" not in error  # keyed on its pk: enough
        done = subprocess.run(wal.command("--replica-identity-full"), capture_output=True, text=True, env=wal.env)
        assert done.returncode == 0 and "REPLICA IDENTITY FULL on public.testapp_slugged" in done.stdout
        wal.follow()
    finally:
        wal.sql("ALTER TABLE testapp_slugged REPLICA IDENTITY FULL")


def test_missing_replication_attribute_is_named(wal):
    wal.env["CACHELAYER_TEST_WAL_DB"] = wal.env["CACHELAYER_TEST_WAL_DB"].replace("//cachelayer:", f"//{PLAIN_USER}:")
    error = follow_error(wal)
    assert (
        f"role '{PLAIN_USER}' lacks the REPLICATION attribute" in error
        and f"ALTER ROLE {PLAIN_USER} REPLICATION" in error
    )


def test_the_ddl_log_needs_a_superuser_and_a_follower_without_it_says_so(wal):
    done = subprocess.run(wal.command("--ddl-log"), capture_output=True, text=True, env=wal.env, timeout=60)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "needs a superuser, and 'cachelayer' is not one" in done.stderr and "--ddl-log" in done.stderr
    wal.server.psql("ALTER EVENT TRIGGER cachelayer_ddl_log DISABLE", database=wal.database)
    try:
        note = wal.follow().stderr
        assert "is not followed (no event trigger cachelayer_ddl_log)" in note and "--ddl-log" in note
    finally:
        wal.server.psql("ALTER EVENT TRIGGER cachelayer_ddl_log ENABLE", database=wal.database)
    assert "cachelayer_ddl_log" not in wal.follow().stderr


def test_slot_is_created_and_dropped_explicitly(wal):
    done = subprocess.run(wal.command("--drop-slot"), capture_output=True, text=True, env=wal.env, timeout=60)
    try:
        assert done.returncode == 0 and "dropped replication slot cachelayer_wal" in done.stdout
        error = follow_error(wal)
        assert "there is no replication slot cachelayer_wal" in error and "--create-slot" in error
    finally:
        done = subprocess.run(wal.command("--create-slot"), capture_output=True, text=True, env=wal.env, timeout=60)
    assert done.returncode == 0 and "retains the WAL" in done.stdout
    assert "bumped" in wal.follow().stderr  # the position was forgotten: every generation bumped


def test_following_the_shared_server_names_wal_level(wal):
    """The shared PostgreSQL runs with wal_level=replica: following it says what to change."""
    command = [part if part != "wal" else "default" for part in wal.command("--once")]  # --database default
    done = subprocess.run(command, capture_output=True, text=True, env=wal.env, timeout=60)
    assert done.returncode == 1 and "wal_level is replica" in done.stderr and "wal_level = logical" in done.stderr
