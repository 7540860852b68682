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


def database_name() -> str:
    return "sqlite" if django_settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") else "mariadb"


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
