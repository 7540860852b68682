"""Test settings: the demo site plus every cache of the matrix and a test app.

The database comes from CACHELAYER_DB (scripts/test.sh runs the suite once
per database); the cache is chosen per test by the ``backend`` fixture.
"""

import json
import os

from demo_project.env import BASE_DIR, cache_from_url, database_from_url
from demo_project.settings import *  # noqa: F403
from demo_project.settings import DATABASES, INSTALLED_APPS

# testapp.Shared and SharedWriter share a table on purpose (tests/layer/test_other_code.py
# calls the check itself); commands run in subprocesses must print nothing else.
SILENCED_SYSTEM_CHECKS = ["cachelayer.W014"]
INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp", "tests.migrapp", "tests.deployapp"]

MEMCACHED_URL = os.environ.get("CACHELAYER_TEST_MEMCACHED", "memcached://127.0.0.1:11211")
REDIS_URL = os.environ.get("CACHELAYER_TEST_REDIS", "redis://127.0.0.1:6379/15")

CACHES = {
    "default": cache_from_url("locmem"),
    # No culling: LocMemCache evicts a third of its keys past 300 (MAX_ENTRIES), and
    # the suite shares one in-process cache; an eviction would look like a miss.
    "locmem": {**cache_from_url("locmem"), "LOCATION": "cachelayer-tests", "OPTIONS": {"MAX_ENTRIES": 10**7}},
    "memcached": cache_from_url(MEMCACHED_URL),
    # The same memcached through pylibmc: the adapter contract tests and a read/write
    # smoke run on it (tests/layer/test_pylibmc.py), not the whole matrix.
    "pylibmc": cache_from_url(MEMCACHED_URL.replace("memcached://", "pylibmc://", 1)),
    "redis": cache_from_url(REDIS_URL),
}

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so that threads, other processes and raw sqlite3 see it.
    (BASE_DIR / "test-output").mkdir(exist_ok=True)
    # One file per run of the test command (scripts/test.sh runs them side by side).
    _run = os.environ.get("CACHELAYER_TEST_RUN", "sqlite")
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-output" / f"test-{_run}.sqlite3")}
    # IMMEDIATE: concurrent writers wait for the lock instead of failing at once.
    # synchronous=OFF: a commit does not wait for the disk (fsync), only durability across a
    # power cut is lost; locking and what other connections see are unchanged. Every
    # transactional_db test's flush commits a dozen times: fsync was most of its teardown.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA synchronous=OFF",
    }
else:
    # The same test database seen under REPEATABLE READ, and under the server's own default
    # (isolation_level absent on PostgreSQL, None on MariaDB), which is REPEATABLE READ on
    # MariaDB and which this connection sets so on PostgreSQL (libpq's options: the shared
    # server's configuration is never changed). Transaction-rule tests read through them.
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        from psycopg import IsolationLevel

        # A commit does not wait for the WAL to reach the disk (libpq's options set it for this
        # session only; the shared server's configuration is never changed): locking, isolation
        # and what other connections see are unchanged, only durability across a crash is lost.
        DATABASES["default"]["OPTIONS"] = {"options": "-c synchronous_commit=off"}

        _isolations = {
            "repeatable_read": {**DATABASES["default"]["OPTIONS"], "isolation_level": IsolationLevel.REPEATABLE_READ},
            "server_default": {
                "options": "-c synchronous_commit=off -c default_transaction_isolation=repeatable\\ read"
            },
        }
    else:
        _isolations = {
            "repeatable_read": {**DATABASES["default"]["OPTIONS"], "isolation_level": "repeatable read"},
            "server_default": {**DATABASES["default"]["OPTIONS"], "isolation_level": None},
        }
    for _alias, _options in _isolations.items():
        DATABASES[_alias] = {**DATABASES["default"], "OPTIONS": _options, "TEST": {"MIRROR": "default"}}
    # The follower tests' own MariaDB with a row binlog (tests/follow/mariadb.py), started by
    # tests/conftest.py only when a collected test uses this alias. The port is chosen once and
    # inherited by child processes; CACHELAYER_TEST_BINLOG_DB names the test database there.
    from tests.faults.servers import free_port

    _binlog_port = os.environ.setdefault("CACHELAYER_TEST_BINLOG_PORT", str(free_port()))
    DATABASES["binlog"] = database_from_url(
        os.environ.get("CACHELAYER_TEST_BINLOG_DB", f"mysql://cachelayer:cachelayer@127.0.0.1:{_binlog_port}/cl_binlog")
    )
    # Its server's default collation (utf8mb4_unicode_ci) cannot be folded exactly, so
    # char-keyed containers would read from the database alone there: the test database
    # gets MariaDB's usual default, under which they are cached (engine/collations.py).
    DATABASES["binlog"]["TEST"] = {**DATABASES["binlog"].get("TEST", {}), "COLLATION": "utf8mb4_general_ci"}
    DATABASE_ROUTERS = ["tests.routers.BinlogRouter"]
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # The WAL follower tests' own PostgreSQL with wal_level=logical (tests/follow/postgres.py),
        # started like the binlog's MariaDB; CACHELAYER_TEST_WAL_DB names the test database there.
        _wal_port = os.environ.setdefault("CACHELAYER_TEST_WAL_PORT", str(free_port()))
        DATABASES["wal"] = database_from_url(
            os.environ.get("CACHELAYER_TEST_WAL_DB", f"postgresql://cachelayer:cachelayer@127.0.0.1:{_wal_port}/cl_wal")
        )

# Processes a test starts (tests/helpers.py) get the test's CACHELAYER this way.
CACHELAYER = json.loads(os.environ.get("CACHELAYER_TEST_SETTINGS", "{}"))

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
