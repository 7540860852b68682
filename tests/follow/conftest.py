"""Fixtures of the follower tests: the private binlog server, the test models
mapped onto it, and cache_follow run in a process of its own."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connections
from django.utils import timezone

from cachelayer.engine.registry import registry
from cachelayer.models import Container, FollowerPosition
from tests.conftest import BINLOG_ALIAS, WAL_ALIAS, database_name
from tests.faults.servers import ServerProcess
from tests.follow.mariadb import PASSWORD, USER
from tests.helpers import ROOT, environment

ON_MARIADB = database_name() == "mariadb"
# Every follower test uses both databases; the skip says why the SQLite half has none.
pytestmark_follow = [
    pytest.mark.skipif(not ON_MARIADB, reason="needs MariaDB: the binlog follower follows a MySQL/MariaDB row binlog"),
    pytest.mark.django_db(transaction=True, databases=["default", BINLOG_ALIAS] if ON_MARIADB else ["default"]),
    pytest.mark.caches("memcached", "redis"),  # the follower runs in another process: LocMem is not shared
]
FOLLOW_TIMEOUT = 60  # seconds one `cache_follow --once` may take
POLL = 0.02  # seconds between two reads while waiting for the follower
POSITIONS_DB = "cl_positions"  # cachelayer's own tables on the followed server itself


def url(alias: str) -> str:
    params = connections[alias].settings_dict
    return f"mysql://{params['USER']}:{params['PASSWORD']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"


def seconds_until(expected, read, limit: float) -> float:
    """Poll ``read()`` until it returns ``expected``; return the seconds it took (fail past ``limit``)."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if read() == expected:
            return time.monotonic() - start
        time.sleep(POLL)
    pytest.fail(f"still {read()!r} after {limit} s, expected {expected!r}")


@contextmanager
def own_memcached(settings, logged):
    """Point this process and ``logged``'s next cache_follow at a memcached of the test's own (to
    freeze), with a short socket timeout and breaker cooldown; yield it, kill it after."""
    server = ServerProcess("memcached").start()
    try:
        settings.CACHES = {
            **settings.CACHES,
            "memcached": {
                "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
                "LOCATION": server.location,
            },
        }
        settings.CACHELAYER = {**settings.CACHELAYER, "SOCKET_TIMEOUT": 0.2, "BREAKER_COOLDOWN": 0.5}
        logged.env.update(CACHELAYER_TEST_MEMCACHED=f"memcached://{server.location}")
        logged.env["CACHELAYER_TEST_SETTINGS"] = logged.env["CACHELAYER_TEST_SETTINGS"].replace(
            "}", ', "SOCKET_TIMEOUT": 0.2, "BREAKER_COOLDOWN": 0.5}'
        )
        yield server
    finally:
        server.kill()


class Processes:
    """The following (blocking) cache_follow processes of one test; ``kill`` at its teardown."""

    def __init__(self, logged, alias: str):
        self.logged, self.alias, self.started = logged, alias, []

    def start(self) -> subprocess.Popen:
        """Start one and wait until it follows (its start is stored with its position)."""
        since = timezone.now()
        process = self.logged.start()
        self.started.append(process)
        stored = FollowerPosition.objects.filter(database=self.alias, started__gte=since)
        seconds_until(True, stored.exists, 15)
        return process

    def kill(self) -> None:
        for process in self.started:
            process.send_signal(signal.SIGCONT)  # (a test may have stopped it)
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


class Binlog:
    """The binlog database as a test sees it: raw SQL, and cache_follow in another process."""

    alias = BINLOG_ALIAS

    def __init__(self, server, **env):
        self.server = server
        self.database = connections[BINLOG_ALIAS].settings_dict["NAME"]
        self.env = {**environment(), "CACHELAYER_TEST_BINLOG_DB": url(BINLOG_ALIAS), **env}

    def sql(self, statement: str, **kwargs) -> str:
        """Run SQL with the mariadb client, outside Django (no in-process invalidation)."""
        return self.server.sql(statement, self.database, **kwargs).stdout

    def command(self, *args: str) -> list[str]:
        return [sys.executable, str(ROOT / "manage.py"), "cache_follow", "--database", self.alias, *args]

    def follow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``cache_follow --once`` to the end of the binlog."""
        done = subprocess.run(
            self.command("--once", *args), capture_output=True, text=True, env=self.env, timeout=FOLLOW_TIMEOUT
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done

    def follow_here(self) -> str:
        """Follow to the end of the log in this process (the --once loop, without a process's start-up
        cost); return the command's summary line. The processes' tests run ``cache_follow`` itself."""
        from cachelayer.tasks.follow.follower import Follower

        follower = Follower(self.alias, once=True)
        follower.run()
        return follower.summary()

    def start(self, *args: str) -> subprocess.Popen:
        """Start a following (blocking) cache_follow; the caller stops or kills it."""
        return subprocess.Popen(
            self.command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env
        )


@pytest.fixture
def binlog(backend, binlog_server):
    """Map the test models' containers onto the binlog database and return a Binlog."""
    ids = ContentType.objects.filter(app_label="testapp").values_list("id", flat=True)
    Container.objects.filter(content_type__in=list(ids)).update(database=BINLOG_ALIAS)
    registry.load()
    yield Binlog(binlog_server)


@pytest.fixture
def followed(binlog):
    """A Binlog whose follower already ran once (a position is stored; nothing is bumped at start)."""
    binlog.follow_here()
    return binlog


@pytest.fixture(scope="session")
def positions_database(binlog_server) -> str:
    """Return a CACHELAYER_DB for a database of the binlog server holding cachelayer's tables.

    A follower run with it stores its position in the binlog it follows, as
    on a one-server deployment (the suite's ``default`` lives elsewhere).
    """
    binlog_server.sql(f"DROP DATABASE IF EXISTS {POSITIONS_DB}; CREATE DATABASE {POSITIONS_DB}")
    url = f"mysql://{USER}:{PASSWORD}@127.0.0.1:{binlog_server.port}/{POSITIONS_DB}"
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v0"],
        env={**environment(), "CACHELAYER_DB": url},
        check=True,
        capture_output=True,
        timeout=FOLLOW_TIMEOUT,
    )
    return url


# --- the WAL follower (PostgreSQL half) ---------------------------------------
ON_POSTGRESQL = database_name() == "postgresql"
pytestmark_wal = [
    pytest.mark.skipif(not ON_POSTGRESQL, reason="needs PostgreSQL: the WAL follower decodes PostgreSQL's WAL"),
    pytest.mark.django_db(transaction=True, databases=["default", WAL_ALIAS] if ON_POSTGRESQL else ["default"]),
    pytest.mark.caches("memcached"),  # the follower runs in another process: LocMem is not shared
    pytest.mark.slow,  # a private PostgreSQL, cache_follow processes
]


def postgresql_url(alias: str, user: str = "") -> str:
    params = connections[alias].settings_dict
    return (
        f"postgresql://{user or params['USER']}:{params['PASSWORD']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"
    )


class Wal(Binlog):
    """The WAL database as a test sees it: raw SQL over a psycopg connection of its own, and cache_follow."""

    alias = WAL_ALIAS

    def __init__(self, server, **env):
        self.server = server
        self.database = connections[WAL_ALIAS].settings_dict["NAME"]
        self.env = {**environment(), "CACHELAYER_TEST_WAL_DB": postgresql_url(WAL_ALIAS), **env}
        self._connection = None

    def sql(self, statement: str, **kwargs) -> str:
        """Run SQL on a psycopg connection outside Django (no in-process invalidation), autocommit."""
        import psycopg

        if self._connection is None:
            self._connection = psycopg.connect(postgresql_url(WAL_ALIAS), autocommit=True)
        cursor = self._connection.execute(statement)
        return "\n".join("\t".join(map(str, row)) for row in cursor.fetchall()) if cursor.description else ""

    def command(self, *args: str) -> list[str]:
        return [sys.executable, str(ROOT / "manage.py"), "cache_follow", "--database", self.alias, *args]

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


@pytest.fixture
def wal(backend, wal_server):
    """Map the test models' containers onto the WAL database; the first time, create the slot, set
    REPLICA IDENTITY FULL where a container needs it and install the DDL log as a superuser (the
    documented set-up); return a Wal."""
    ids = ContentType.objects.filter(app_label="testapp").values_list("id", flat=True)
    Container.objects.filter(content_type__in=list(ids)).update(database=WAL_ALIAS)
    registry.load()
    logged = Wal(wal_server)
    if not getattr(wal_server, "set_up", False):
        superuser = {**logged.env, "CACHELAYER_TEST_WAL_DB": postgresql_url(WAL_ALIAS, "postgres")}
        for step, env in (
            ("--create-slot", logged.env),
            ("--replica-identity-full", logged.env),
            ("--ddl-log", superuser),
        ):
            done = subprocess.run(logged.command(step), capture_output=True, text=True, env=env, timeout=60)
            assert done.returncode == 0, done.stderr
        wal_server.set_up = True
    yield logged
    logged.close()


@pytest.fixture
def walled(wal):
    """A Wal whose follower already ran once (a position is stored; nothing is bumped at start)."""
    wal.follow_here()
    return wal
