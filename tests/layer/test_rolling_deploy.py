"""A rolling deploy (issue 24): processes of two releases of a project's code run
against one database and one cache while the new release's migrations run.

tests/deployapp_v1 is the first release (price to 3 places, lists by category,
pickle, payload key 1); tests/deployapp the second (price in cents, a shelf
column with a database default, lists by shelf too, JSON, payload key 2 with
key 1 as a fallback). Each release runs in its own OS process
(tests/deployapp/worker.py). The steps are a deploy's:

1. the first release serves alone (the database at 0001);
2. ``manage.py migrate`` of the second release runs while the first keeps
   writing and reading;
3. a process of the second release starts beside the first; both write;
4. the first release stops.

After every step, in every running process, every container's cached reads
equal fresh database reads as that process's code sees them, and
cache_inspect finds 0 stale entries.
"""

import json
import subprocess
import sys

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from cachelayer.models import Container
from tests.helpers import ROOT, environment, manage

pytestmark = pytest.mark.slow  # starts processes

RELEASES = {
    "v1": ("tests.deployapp_v1.settings", {"SERIALIZER": "pickle", "PAYLOAD_KEY": "release-1"}),
    "v2": (
        "tests.settings",
        {"SERIALIZER": "json", "PAYLOAD_KEY": "release-2", "PAYLOAD_KEY_FALLBACKS": ["release-1"]},
    ),
}


class Release:
    """One process running a release of tests/deployapp (tests/deployapp/worker.py)."""

    def __init__(self, name: str, cachelayer: dict):
        settings_module, own = RELEASES[name]
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.deployapp.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**environment(**cachelayer, **own), "DJANGO_SETTINGS_MODULE": settings_module},
        )

    def ask(self, **command) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"release {self.name} died (exit {self.process.wait(timeout=10)})"
        return json.loads(line)

    def stop(self) -> None:
        self.process.stdin.close()
        assert self.process.wait(timeout=30) == 0


def migrate_to(migration):
    MigrationExecutor(connection).migrate([("deployapp", migration)])


@pytest.fixture
def first_release_deployed(backend):
    """The database as the first release left it (its containers: made by its own
    migrate below); migrated forward again afterwards."""
    migrate_to("0001_initial")
    Container.objects.filter(content_type__app_label="deployapp").delete()
    try:
        yield
    finally:
        migrate_to("0002_cents_and_shelf")


def assert_fresh(*releases: Release) -> None:
    for release in releases:
        answer = release.ask(op="check")
        assert answer["checked"] > 0 and answer["stale"] == [], (release.name, answer)


@pytest.mark.caches("memcached", "redis")  # shared by processes
def test_a_rolling_deploy_never_serves_a_stale_row(backend, first_release_deployed):
    cachelayer: dict = {}  # the test's (its cache and key prefix): tests/helpers.environment
    old = Release("v1", cachelayer)
    new = None
    try:
        # 1. The first release alone (its containers: created by its own migrate).
        result = manage(
            "migrate",
            "deployapp",
            "0001_initial",
            env={"DJANGO_SETTINGS_MODULE": "tests.deployapp_v1.settings"},
            **cachelayer,
            **RELEASES["v1"][1],
        )
        assert result.returncode == 0, result.stderr
        old.ask(op="writes", seed=1, count=40)
        assert_fresh(old)

        # 2. The second release's migrate, while the first writes and reads.
        old.ask(op="churn", seed=2)
        result = manage("migrate", "deployapp", **cachelayer, **RELEASES["v2"][1])
        assert result.returncode == 0, result.stderr
        assert old.ask(op="stop")["writes"] > 0
        assert_fresh(old)

        # 3. Both releases serve.
        new = Release("v2", cachelayer)
        assert_fresh(new, old)
        for seed in range(3, 6):
            old.ask(op="writes", seed=seed, count=20)
            assert_fresh(new, old)
            new.ask(op="writes", seed=seed + 100, count=20)
            assert_fresh(new, old)

        # 4. The first release stops.
        old.stop()
        old = None
        new.ask(op="writes", seed=7, count=20)
        assert_fresh(new)
    finally:
        for release in (old, new):
            if release is not None and release.process.poll() is None:
                release.process.kill()
