"""Fixtures of the follower tests: the private binlog server, the test models
mapped onto it, and cache_follow run in a process of its own."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connections

from cachelayer.engine.registry import registry
from cachelayer.models import Container
from tests.conftest import BINLOG_ALIAS, database_name
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
POSITIONS_DB = "cl_positions"  # cachelayer's own tables on the followed server itself


def url(alias: str) -> str:
    params = connections[alias].settings_dict
    return f"mysql://{params['USER']}:{params['PASSWORD']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"


class Binlog:
    """The binlog database as a test sees it: raw SQL, and cache_follow in another process."""

    def __init__(self, server, **env):
        self.server = server
        self.database = connections[BINLOG_ALIAS].settings_dict["NAME"]
        self.env = {**environment(), "CACHELAYER_TEST_BINLOG_DB": url(BINLOG_ALIAS), **env}

    def sql(self, statement: str, **kwargs) -> str:
        """Run SQL with the mariadb client, outside Django (no in-process invalidation)."""
        return self.server.sql(statement, self.database, **kwargs).stdout

    def command(self, *args: str) -> list[str]:
        return [sys.executable, str(ROOT / "manage.py"), "cache_follow", "--database", BINLOG_ALIAS, *args]

    def follow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``cache_follow --once`` to the end of the binlog."""
        done = subprocess.run(
            self.command("--once", *args), capture_output=True, text=True, env=self.env, timeout=FOLLOW_TIMEOUT
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done

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
    binlog.follow()
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
