"""The database x cache matrix.

The database is fixed per process (CACHELAYER_DB; scripts/test.sh runs the
suite once per database). Every test that uses the ``backend`` fixture (all
of tests/layer/ does, automatically) runs once per cache, with test ids such
as ``[mariadb-redis]``, and starts on an empty key space. ``cache_backend`` is
the same matrix without the database.
"""

import os
import uuid
from contextlib import contextmanager

import pytest
from django.conf import settings as django_settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.test.utils import CaptureQueriesContext

CACHE_ALIASES = ["locmem", "memcached", "redis"]


DATABASE_NAMES = {"sqlite3": "sqlite", "mysql": "mariadb", "postgresql": "postgresql"}  # by Django backend


def database_name() -> str:
    return DATABASE_NAMES[django_settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]]


# Fixtures that start processes (cache servers, a MariaDB, a browser, a live server):
# a test that uses one is ``slow``, whatever its file.
SLOW_FIXTURES = {"start_servers", "binlog", "wal", "live_server"}


def pytest_addoption(parser):
    parser.addoption(
        "--caches",
        default=None,
        help="comma-separated caches to run (default: every one); the other caches' tests are deselected",
    )


MONITOR_DELAYS = [0.3, 0.6]  # s: the freshness monitor's delays under ``sampled``
ONE_DATABASE = "sqlite"  # where the tests marked one_database run: the shortest run of the test command


def pytest_collection_modifyitems(config, items):
    """Mark the tests that start processes ``slow``; skip the one_database tests on the other
    databases; deselect the caches not asked for."""
    wanted = config.getoption("caches")
    kept, deselected = [], []
    elsewhere = pytest.mark.skip(reason=f"independent of the database under test: runs in the {ONE_DATABASE} run")
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("one_database") and database_name() != ONE_DATABASE:
            item.add_marker(elsewhere)
        alias = item.callspec.params.get("cache_backend") if hasattr(item, "callspec") else None
        (kept if alias is None or wanted is None or alias in wanted.split(",") else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


def pytest_generate_tests(metafunc):
    if "cache_backend" in metafunc.fixturenames:  # backend requests it too
        marker = metafunc.definition.get_closest_marker("caches")  # @pytest.mark.caches("memcached")
        aliases = list(marker.args) if marker else CACHE_ALIASES
        metafunc.parametrize("cache_backend", aliases, indirect=True, ids=[f"{database_name()}-{c}" for c in aliases])


@pytest.fixture
def cache_backend(request, settings):
    """Point cachelayer at one cache of the matrix, under a fresh key prefix.

    No database: a test of the cache alone (the adapter contract) pays no flush,
    and a query it makes by mistake fails instead of passing unnoticed."""
    settings.CACHELAYER = {"CACHE_ALIAS": request.param, "KEY_PREFIX": f"t{uuid.uuid4().hex[:12]}"}
    yield request.param


@pytest.fixture(autouse=True)
def fresh_statistics():
    """Every test counts from zero: an earlier test's unpublished counts would otherwise be
    published into this one's key space (its first due publish) and show in its statistics."""
    from cachelayer.engine import stats

    stats.reset()


@pytest.fixture
def django_assert_num_queries():
    """pytest-django's fixture of that name, with the queries in its failure at any verbosity:
    a CI log is all a failure leaves, and "1 was done" does not say which query ran."""

    @contextmanager
    def assert_num_queries(num, exact=True, connection=None, info=None, *, using=None):
        with CaptureQueriesContext(connection or connections[using or DEFAULT_DB_ALIAS]) as context:
            yield context
        done = len(context)
        if done != num if exact else done > num:
            queries = "\n\n".join(query["sql"] for query in context.captured_queries)
            expected = f"{num} queries" if exact else f"{num} queries or less"
            verb = "was" if done == 1 else "were"
            pytest.fail(
                f"Expected {expected} but {done} {verb} done{f': {info}' if info else ''}\n\nQueries:\n{queries}"
            )

    return assert_num_queries


@pytest.fixture
def backend(cache_backend, transactional_db):
    """``cache_backend`` over a database whose writes really commit: cachelayer
    invalidates in ``on_commit``, and other threads and processes see the rows."""
    return cache_backend


@pytest.fixture
def sampled(backend, settings):
    """The freshness monitor's settings for a test: every write sampled, short delays, a
    budget that skips nothing."""
    import random

    settings.CACHELAYER = {
        **settings.CACHELAYER,
        "MONITOR_SAMPLE_RATE": 1.0,
        "MONITOR_DELAYS": MONITOR_DELAYS,
        "MONITOR_QUERIES_PER_SECOND": 1000,
        "MONITOR_TARGETS": {MONITOR_DELAYS[-1]: 0.999},
    }
    # A sample lands in a random slot of its container's ring, and two in one slot keep the
    # later (the ring is bounded by design): a seeded draw puts a test's few samples apart.
    random.seed(20261202)
    return backend


@pytest.fixture
def on_mariadb():
    if database_name() != "mariadb":
        pytest.skip("MariaDB only: runs in the mariadb half of the matrix")


@pytest.fixture
def on_server_database():
    """Skip on SQLite: the test needs a database server's row locks or isolation levels."""
    if database_name() == "sqlite":
        pytest.skip("MariaDB and PostgreSQL only: runs in their halves of the matrix")


# The aliases that read the test database under other isolation levels (tests/settings.py; server
# databases only). Tests name them rather than "__all__", which would also start the followers'
# private servers and flush their databases after every test.
ISOLATION_DATABASES = [
    alias for alias in ("default", "repeatable_read", "server_default") if alias in django_settings.DATABASES
]

BINLOG_ALIAS = "binlog"  # tests/settings.py: the follower tests' private MariaDB
WAL_ALIAS = "wal"  # tests/settings.py: the WAL follower tests' private PostgreSQL (PostgreSQL half only)


def _uses(alias: str, item) -> bool:
    marker = item.get_closest_marker("django_db")
    databases = marker.kwargs.get("databases") or () if marker else ()
    return databases == "__all__" or alias in databases


def _private_port(request, alias: str) -> int | None:
    """Return the port of ``alias``'s private server when a collected test uses the alias, else None."""
    if alias not in django_settings.DATABASES or not any(_uses(alias, item) for item in request.session.items):
        return None
    return int(django_settings.DATABASES[alias]["PORT"])


def _private_root(name: str):
    """One directory per run of the test command: scripts/test.sh runs the databases side by side."""
    from tests.helpers import ROOT

    return ROOT / "test-output" / f"{name}-{os.environ.get('CACHELAYER_TEST_RUN') or database_name()}"


@pytest.fixture(scope="session")
def binlog_server(request):
    """The private MariaDB with a row binlog, when a collected test uses it (else None).

    Started before the test databases are created (see django_db_setup below)
    and stopped at the end of the session.
    """
    port = _private_port(request, BINLOG_ALIAS)
    if port is None:
        yield None
        return
    from tests.follow.mariadb import PrivateMariaDB

    server = PrivateMariaDB(_private_root("binlog-mariadb"), port).install().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def wal_server(request):
    """The private PostgreSQL with wal_level=logical, when a collected test uses it (else None)."""
    port = _private_port(request, WAL_ALIAS)
    if port is None:
        yield None
        return
    from tests.follow.postgres import PrivatePostgres

    server = PrivatePostgres(_private_root("wal-postgres"), port).install().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def django_db_setup(binlog_server, wal_server, django_db_setup):
    """pytest-django's, after the binlog and WAL servers (if wanted) are up: their test databases are created too."""
    yield
