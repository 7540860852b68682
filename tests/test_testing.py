"""cachelayer.testing: a project's own TestCase (and pytest-django test) can
assert hits, under Django's runner and under pytest-django."""

import subprocess
import sys
import uuid

import pytest
from django.db import transaction
from django.test import TestCase, override_settings

from cachelayer.adapters.registry import get_adapter
from cachelayer.engine import topology
from cachelayer.testing import CachelayerTestMixin, cache_as_committed
from tests.conftest import database_name
from tests.helpers import ROOT, environment
from tests.testapp.models import Item


class WithoutTheHelper(TestCase):
    """What the helper is for: inside TestCase's transaction a second read is no hit."""

    def test_a_second_read_asks_the_database_again(self):
        item = Item.objects.create(value=1)
        Item.cached.get(item.pk)
        with self.assertNumQueries(1):
            Item.cached.get(item.pk)


class ReplayWritesNothingOwed(TestCase):
    """A process's first read replays the outbox on a connection of its own; with
    nothing owed it must not write: on SQLite, that write waited for the lock of the
    test's own transaction (``timeout``, 20 s) and then failed."""

    def test_a_replay_of_an_empty_outbox_takes_no_lock(self):
        from django.db import connection

        from cachelayer.engine import database, outbox

        if connection.vendor != "sqlite":
            self.skipTest("SQLite: one writer at a time")
        Item.objects.create(value=1)  # this transaction now holds SQLite's write lock
        options = connection.settings_dict["OPTIONS"]
        saved = options["timeout"]
        options["timeout"] = 0.2  # the replay's own connection: fail fast instead of waiting
        try:
            with self.assertNoLogs("cachelayer", level="ERROR"):
                database.in_own_connection(outbox._replay, get_adapter("default"), [])
        finally:
            options["timeout"] = saved


class WithTheHelper(CachelayerTestMixin, TestCase):
    def test_a_second_read_is_a_hit(self):
        item = Item.objects.create(value=1)
        self.assertEqual(Item.cached.get(item.pk).value, 1)
        with self.assertNumQueries(0):
            self.assertEqual(Item.cached.get(item.pk).value, 1)

    def test_a_write_outdates_at_once(self):
        item = Item.objects.create(value=1)
        Item.cached.get(item.pk)
        Item.objects.filter(pk=item.pk).update(value=2)
        self.assertEqual(Item.cached.get(item.pk).value, 2)
        with self.assertNumQueries(0):
            self.assertEqual(Item.cached.get(item.pk).value, 2)

    def test_an_inner_atomic_is_a_transaction_of_its_own(self):
        item = Item.objects.create(value=1)
        Item.cached.get(item.pk)
        with transaction.atomic():
            item.value = 2
            item.save()
            with self.assertNumQueries(1):  # its own write bypasses the cache until it ends
                self.assertEqual(Item.cached.get(item.pk).value, 2)
        self.assertEqual(Item.cached.get(item.pk).value, 2)  # "committed": outdated, then filled
        with self.assertNumQueries(0):
            self.assertEqual(Item.cached.get(item.pk).value, 2)
        with self.assertRaises(ZeroDivisionError), transaction.atomic():
            Item.objects.filter(pk=item.pk).update(value=3)
            raise ZeroDivisionError
        with self.assertNumQueries(0):  # rolled back: the cache still holds the right row
            self.assertEqual(Item.cached.get(item.pk).value, 2)


class EachTestStartsOnAnEmptyKeySpace(CachelayerTestMixin, TestCase):
    """Test a runs before test b (unittest sorts by name, pytest keeps the order)."""

    pk = 424242

    def test_a_caches_a_row_its_rollback_removes(self):
        Item.objects.create(pk=self.pk, value=1)
        Item.cached.get(self.pk)

    def test_b_does_not_see_it(self):
        with self.assertRaises(Item.DoesNotExist):
            Item.cached.get(self.pk)


@pytest.fixture
def committed(db):
    """The fixture the README shows for pytest-django."""
    with cache_as_committed():
        yield


def test_pytest_django_tests_get_hits_with_the_fixture(committed, django_assert_num_queries):
    item = Item.objects.create(value=1)
    Item.cached.get(item.pk)
    with django_assert_num_queries(0):
        assert Item.cached.get(item.pk).value == 1
    Item.objects.filter(pk=item.pk).update(value=2)
    assert Item.cached.get(item.pk).value == 2


# The same TestCase classes, found by Django's runner in a package of its own.
RUNNER_TESTS = "from tests.test_testing import EachTestStartsOnAnEmptyKeySpace, WithTheHelper  # noqa: F401\n"


@pytest.mark.slow  # manage.py test in a process of its own
def test_djangos_runner_runs_a_testcase_with_the_mixin(tmp_path):
    """``manage.py test`` (Django's runner, its own test database) passes a test that asserts a hit."""
    if database_name() != "sqlite":
        pytest.skip("the runner would create the test database this session uses: runs in the sqlite half")
    package = tmp_path / "runner_tests"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "test_hits.py").write_text(RUNNER_TESTS)
    env = {**environment(), "PYTHONPATH": f"{ROOT}:{tmp_path}", "CACHELAYER_TEST_RUN": "django-runner"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "test", "runner_tests", "--noinput", "-v", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0 and "Ran 5 tests" in result.stderr and "OK" in result.stderr, result.stderr


@override_settings(CACHELAYER={"CACHE_ALIAS": "memcached", "KEY_PREFIX": f"tt{uuid.uuid4().hex[:10]}"})
class WithTheHelperOnMemcached(CachelayerTestMixin, TestCase):
    """A shared cache: the topology check (engine/topology.py) writes its membership row,
    and runs on the test's own connection (another would wait for the test's locks)."""

    def test_hits_survive_a_topology_check_inside_the_test(self):
        item = Item.objects.create(value=1)
        self.assertEqual(Item.cached.get(item.pk).value, 1)
        topology.stale(get_adapter("memcached"))  # as after a configuration change
        self.assertEqual(Item.cached.get(item.pk).value, 1)
        with self.assertNumQueries(0):
            self.assertEqual(Item.cached.get(item.pk).value, 1)
