"""The follower's health as the server sees it: lag under SIGSTOP, a killed
follower's stopped heartbeat, the binlog an idle follower adds to, and a
position it may not store."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from django.utils import timezone

from cachelayer.models import FollowerPosition
from cachelayer.tasks.follow import progress
from tests.faults.servers import stop
from tests.follow.conftest import POSITIONS_DB, pytestmark_follow
from tests.follow.mariadb import PASSWORD
from tests.helpers import manage

pytestmark = [*pytestmark_follow[:2], pytest.mark.caches("memcached")]

IDLE_SECONDS = 6  # how long an idle follower is watched
IDLE_WRITES = 3  # transactions it may log meanwhile: a heartbeat every few seconds
POLL = 0.1
LIMITED_USER = "nopositionwrite"  # may follow, may not store its position


def until(predicate, limit: float):
    """Poll ``predicate()`` until it is truthy; return its value (fail past ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(POLL)
    pytest.fail(f"not true after {limit} s")


def health() -> dict:
    """Return the binlog follower's row of the status, measured in this process."""
    (row,) = [row for row in progress.status() if row["database"] == "binlog"]
    return row


def status(logged, *args: str) -> subprocess.CompletedProcess:
    """Run ``cache_follow --status`` (every follower's rows, whatever --database says)."""
    return subprocess.run(logged.command("--status", *args), capture_output=True, text=True, env=logged.env, timeout=60)


@pytest.fixture
def process(followed):
    """Start a following cache_follow once its start is stored; kill it at teardown."""
    since = timezone.now()
    started = followed.start()
    until(lambda: FollowerPosition.objects.filter(database="binlog", started__gte=since).exists(), 15)
    yield started
    started.send_signal(signal.SIGCONT)
    started.kill()
    started.wait(timeout=30)


def test_a_stopped_follower_is_stale_while_writes_continue(followed, process, admin_client):
    from cachelayer.tasks.follow.health import STALE_AFTER

    followed.sql("INSERT INTO testapp_item (id, value) VALUES (1, 0)")
    until(lambda: health()["lag_bytes"] == 0, 10)  # caught up
    stop(process)
    for n in range(1, 4):
        followed.sql(f"UPDATE testapp_item SET value = {n} WHERE id = 1")
    time.sleep(STALE_AFTER + 1)
    done = status(followed)
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("binlog:")]
    assert "stale" in line
    (row,) = [row for row in json.loads(status(followed, "--json").stdout) if row["database"] == "binlog"]
    assert row["state"] == "stale" and row["lag_seconds"] > STALE_AFTER and row["lag_bytes"] > 0
    assert row["lag_transactions"] == 3
    stats = manage("cache_stats").stdout
    assert "follower of 'binlog': stale" in stats and "lag 0.0 s" not in stats
    checked = manage("cache_health")  # a stalled follower: degraded, exit 1
    assert checked.returncode == 1 and checked.stdout.startswith("degraded"), checked.stdout + checked.stderr
    assert "follower of binlog is stale" in checked.stdout
    assert "stale" in admin_client.get("/admin/cachelayer/container/stats/").content.decode()
    process.send_signal(signal.SIGCONT)  # it catches up: healthy again, measured the same way
    until(lambda: status(followed).returncode == 0, 10)
    row = until(lambda: (row := health())["lag_bytes"] == 0 and row, 10)
    assert row["state"] == "ok" and row["lag_seconds"] == 0 and row["lag_transactions"] == 0


def test_a_killed_follower_is_down(followed, process):
    from cachelayer.tasks.follow.health import DOWN_AFTER

    until(lambda: health()["state"] == "ok", 10)
    process.kill()  # SIGKILL: no final position write, no goodbye; only its heartbeat stops
    assert process.wait(timeout=30) == -signal.SIGKILL
    until(lambda: health()["state"] == "down", DOWN_AFTER + 5)
    checked = manage("cache_health")
    assert checked.returncode == 1 and checked.stdout.startswith("degraded"), checked.stdout + checked.stderr
    (line,) = [line for line in checked.stdout.splitlines() if "follower of binlog" in line]
    assert line.strip().startswith("follower of binlog is down: down: at ")
    document = json.loads(manage("cache_health", "--json").stdout)
    (row,) = [row for row in document["followers"] if row["database"] == "binlog"]
    assert document["status"] == "degraded" and row["state"] == "down" and row["lag_bytes"] == 0
    assert [line.strip()] == [problem for problem in document["problems"] if "follower of binlog" in problem]


def logged_transactions(server) -> int:
    """Return the sequence number of the server's last GTID (one per logged transaction)."""
    return int(server.sql("SELECT @@gtid_binlog_pos").stdout.strip().split("-")[-1])


def test_an_idle_follower_seldom_writes_into_the_binlog_it_follows(binlog, binlog_server, positions_database):
    binlog.env["CACHELAYER_DB"] = positions_database
    started = binlog.start()
    try:
        until(
            lambda: (
                binlog_server.sql(
                    f"SELECT COUNT(*) FROM {POSITIONS_DB}.cachelayer_followerposition WHERE `database` = 'binlog'"
                ).stdout.strip()
                == "1"
            ),
            30,
        )
        time.sleep(1)  # past its start
        before = logged_transactions(binlog_server)
        time.sleep(IDLE_SECONDS)
        assert logged_transactions(binlog_server) - before <= IDLE_WRITES
        assert started.poll() is None
    finally:
        started.kill()
        started.wait(timeout=30)


def test_a_position_it_cannot_store_is_fatal_and_names_the_grant(binlog, binlog_server, positions_database):
    user = f"'{LIMITED_USER}'@'127.0.0.1'"
    tables = binlog_server.sql(
        f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{POSITIONS_DB}'"
    ).stdout.split()
    binlog_server.sql(
        ";".join(
            [
                f"CREATE USER IF NOT EXISTS {user} IDENTIFIED BY '{PASSWORD}'",
                f"GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO {user}",
                f"GRANT SELECT ON `{binlog.database}`.* TO {user}",
                *(
                    f"GRANT {'SELECT' if table == 'cachelayer_followerposition' else 'ALL'} ON {POSITIONS_DB}.{table} TO {user}"
                    for table in tables
                ),
            ]
        )
    )
    for name in ("CACHELAYER_DB", "CACHELAYER_TEST_BINLOG_DB"):
        source = positions_database if name == "CACHELAYER_DB" else binlog.env[name]
        binlog.env[name] = source.replace("//cachelayer:", f"//{LIMITED_USER}:")
    done = binlog.follow(check=False)
    assert done.returncode == 1, done.stderr
    assert "cachelayer_followerposition" in done.stderr and "GRANT SELECT, INSERT, UPDATE" in done.stderr
    assert "Traceback" not in done.stderr
