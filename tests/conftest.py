"""The database x cache matrix.

The database is fixed per process (CACHELAYER_DB; scripts/test.sh runs the
suite once per database). Every test that uses the ``backend`` fixture (all
of tests/layer/ does, automatically) runs once per cache, with test ids such
as ``[mariadb-redis]``, and starts on an empty key space. ``cache_backend`` is
the same matrix without the database.
"""

import os
import uuid

import pytest
from django.conf import settings as django_settings

CACHE_ALIASES = ["locmem", "memcached", "redis"]


DATABASE_NAMES = {"sqlite3": "sqlite", "mysql": "mariadb", "postgresql": "postgresql"}  # by Django backend


def database_name() -> str:
    return DATABASE_NAMES[django_settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]]


# Fixtures that start processes (cache servers, a MariaDB, a browser, a live server):
# a test that uses one is ``slow``, whatever its file.
SLOW_FIXTURES = {"start_servers", "binlog", "live_server"}


def pytest_addoption(parser):
    parser.addoption(
        "--caches",
        default=None,
        help="comma-separated caches to run (default: every one); the other caches' tests are deselected",
    )


def pytest_collection_modifyitems(config, items):
    """Mark the tests that start processes ``slow``; deselect the caches not asked for."""
    wanted = config.getoption("caches")
    kept, deselected = [], []
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
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
    from cachelayer.engine import stats

    stats.reset()
    yield request.param


@pytest.fixture
def backend(cache_backend, transactional_db):
    """``cache_backend`` over a database whose writes really commit: cachelayer
    invalidates in ``on_commit``, and other threads and processes see the rows."""
    return cache_backend


@pytest.fixture
def on_mariadb():
    if database_name() != "mariadb":
        pytest.skip("MariaDB only: runs in the mariadb half of the matrix")


@pytest.fixture
def on_server_database():
    """Skip on SQLite: the test needs a database server's row locks or isolation levels."""
    if database_name() == "sqlite":
        pytest.skip("MariaDB and PostgreSQL only: runs in their halves of the matrix")


BINLOG_ALIAS = "binlog"  # tests/settings.py: the follower tests' private MariaDB


def _uses_binlog(item) -> bool:
    marker = item.get_closest_marker("django_db")
    databases = marker.kwargs.get("databases") or () if marker else ()
    return databases == "__all__" or BINLOG_ALIAS in databases


@pytest.fixture(scope="session")
def binlog_server(request):
    """The private MariaDB with a row binlog, when a collected test uses it (else None).

    Started before the test databases are created (see django_db_setup below)
    and stopped at the end of the session.
    """
    if BINLOG_ALIAS not in django_settings.DATABASES or not any(map(_uses_binlog, request.session.items)):
        yield None
        return
    from tests.follow.mariadb import PrivateMariaDB
    from tests.helpers import ROOT

    port = int(django_settings.DATABASES[BINLOG_ALIAS]["PORT"])
    # One datadir per run of the test command: scripts/test.sh runs the databases side by side.
    run = os.environ.get("CACHELAYER_TEST_RUN") or database_name()
    server = PrivateMariaDB(ROOT / "test-output" / f"binlog-mariadb-{run}", port).install().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def django_db_setup(binlog_server, django_db_setup):
    """pytest-django's, after the binlog server (if wanted) is up: its test database is created too."""
    yield
