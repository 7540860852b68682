"""A second database without cachelayer's tables (a legacy database, no
router): the outbox skips it, and the cache is read as before."""

import time

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections

from cachelayer.engine import outbox
from cachelayer.models import Container, OutboxEntry
from tests.faults.conftest import COOLDOWN
from tests.testapp.models import Item

LEGACY = "legacy"


@pytest.fixture
def transactional_db(django_db_setup, django_db_blocker, tmp_path):
    """pytest-django's ``transactional_db``, plus the alias ``legacy``: a SQLite
    file holding one table of its own, no cachelayer table and no router.

    Django's test cases refuse connections to an alias they were not given,
    and one given them gets a migrated test database, flushed after each test
    with post_migrate sent for it. So, for this module, the database is opened
    here and the test database flushed afterwards, as ``transactional_db`` does.
    """
    entry = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "legacy.sqlite3")}
    configured = connections.configure_settings(
        {DEFAULT_DB_ALIAS: connections.settings[DEFAULT_DB_ALIAS], LEGACY: entry}
    )
    with django_db_blocker.unblock():
        connections.settings[LEGACY] = configured[LEGACY]
        try:
            with connections[LEGACY].cursor() as cursor:
                cursor.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
            yield
        finally:
            connections[LEGACY].close()
            del connections[LEGACY]
            del connections.settings[LEGACY]
            call_command("flush", database=DEFAULT_DB_ALIAS, interactive=False, verbosity=0)


def freeze_while(server, write) -> None:
    """Run ``write`` while the cache server is frozen: its invalidations go to the outbox."""
    server.freeze()
    try:
        write()
    finally:
        server.thaw()
    time.sleep(COOLDOWN)  # then the next read probes the server: the outbox replays first


@pytest.mark.parametrize("kind", ["memcached", "redis"])
def test_reads_hit_and_the_default_outbox_replays(kind, start_servers, use_servers, django_assert_num_queries):
    (server,) = start_servers(kind)
    use_servers([server])  # its first read replays the outbox, legacy database included
    ids = [item.pk for item in Item.objects.bulk_create(Item(value=1) for _ in range(5))]
    Item.cached.get_many(ids)
    with django_assert_num_queries(0):
        assert Item.cached.get(ids[0]).value == 1

    def write():
        Item.objects.filter(pk__in=ids).update(value=2)
        assert outbox.backlog() == {"testapp_item": OutboxEntry.objects.count()} != {}

    freeze_while(server, write)
    assert {item.value for item in Item.cached.get_many(ids).values()} == {2}
    assert not OutboxEntry.objects.exists()
    with django_assert_num_queries(0):
        assert Item.cached.get(ids[0]).value == 2


@pytest.mark.parametrize("kind", ["memcached", "redis"])
def test_an_invalidation_of_a_legacy_database_row_waits_in_the_default_outbox(
    kind, start_servers, use_servers, django_assert_num_queries
):
    with connections[LEGACY].schema_editor() as editor:
        editor.create_model(Item)
    Container.objects.create(
        name="legacy_items", content_type=ContentType.objects.get_for_model(Item), key_columns="id", database=LEGACY
    )
    (server,) = start_servers(kind)
    use_servers([server])
    legacy_items = Item.cached.container("legacy_items")
    pk = Item.objects.using(LEGACY).create(value=1).pk
    assert legacy_items.get(pk).value == 1
    with django_assert_num_queries(0, using=LEGACY):
        assert legacy_items.get(pk).value == 1  # cached

    def write():
        Item.objects.using(LEGACY).filter(pk=pk).update(value=2)
        assert OutboxEntry.objects.filter(container="legacy_items").exists()  # kept, in a database that can

    freeze_while(server, write)
    assert legacy_items.get(pk).value == 2  # the thawed server's old payload was outdated first
    assert not OutboxEntry.objects.exists()
    with django_assert_num_queries(0, using=LEGACY):
        assert legacy_items.get(pk).value == 2
