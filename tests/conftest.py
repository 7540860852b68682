"""The database x cache matrix.

The database is fixed per process (CACHELAYER_DB; scripts/test.sh runs the
suite once per database). Every test that uses the ``backend`` fixture (all
of tests/layer/ does, automatically) runs once per cache, with test ids such
as ``[mariadb-redis]``, and starts on an empty key space.
"""

import uuid

import pytest
from django.conf import settings as django_settings

CACHE_ALIASES = ["locmem", "memcached", "redis"]


DATABASE_NAMES = {"sqlite3": "sqlite", "mysql": "mariadb", "postgresql": "postgresql"}  # by Django backend


def database_name() -> str:
    return DATABASE_NAMES[django_settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]]


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("caches")  # @pytest.mark.caches("memcached")
        aliases = list(marker.args) if marker else CACHE_ALIASES
        metafunc.parametrize("backend", aliases, indirect=True, ids=[f"{database_name()}-{c}" for c in aliases])


@pytest.fixture
def backend(request, settings, transactional_db):
    """Point cachelayer at one cache of the matrix, under a fresh key prefix."""
    settings.CACHELAYER = {"CACHE_ALIAS": request.param, "KEY_PREFIX": f"t{uuid.uuid4().hex[:12]}"}
    from cachelayer.engine import stats

    stats.reset()
    yield request.param


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
    server = PrivateMariaDB(ROOT / "test-output" / "binlog-mariadb", port).install().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def django_db_setup(binlog_server, django_db_setup):
    """pytest-django's, after the binlog server (if wanted) is up: its test database is created too."""
    yield
