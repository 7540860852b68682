"""The tests' own flush (tests/testapp/management/commands/flush.py) leaves what
Django's flush leaves: no row of the test, every content type, permission and
declared container, and no pk used twice."""

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.commands import flush as djangos
from django.db import connection

from cachelayer.models import Container, OutboxEntry
from tests.testapp.management.commands import flush as ours
from tests.testapp.models import Item


def left() -> dict:
    """What a flush left, by natural keys (Django's flush gives content types new ids)."""
    return {
        "content types": sorted(ContentType.objects.values_list("app_label", "model")),
        "permissions": sorted(Permission.objects.values_list("content_type__app_label", "codename")),
        "containers": sorted(Container.objects.values_list("name", "declared", "key_columns", "value_columns")),
        "items": Item.objects.count(),
        "outbox": OutboxEntry.objects.count(),
    }


def flush(command) -> None:
    """Flush as TransactionTestCase does after every test."""
    call_command(command, database="default", interactive=False, verbosity=0, reset_sequences=False)


def test_the_tests_flush_leaves_what_djangos_leaves(transactional_db):
    flush("flush")  # the first flush of a database is Django's and keeps a snapshot
    assert ("default", connection.settings_dict["NAME"]) in ours.ROWS
    first = Item.objects.create(value=1)
    Container.objects.create(name="extra", content_type=ContentType.objects.get_for_model(Item), key_columns="value")
    flush(djangos.Command())
    theirs = left()
    second = Item.objects.create(value=2)
    Container.objects.create(name="extra", content_type=ContentType.objects.get_for_model(Item), key_columns="value")
    flush("flush")  # ours: a copy of the snapshot
    restored = left()
    assert restored == theirs and restored["items"] == 0
    assert "extra" not in {name for name, *_ in restored["containers"]}
    assert Item.objects.create(value=3).pk > second.pk > first.pk  # no pk twice


def test_after_a_flush_that_resets_sequences_no_kept_row_holds_an_id_they_give(transactional_db):
    """PostgreSQL's sequences do not follow explicit ids: rows kept from before the reset
    would hold the ids the sequence gives next (a duplicate key on the next create)."""
    flush("flush")
    call_command("flush", database="default", interactive=False, verbosity=0)  # Django's: sequences reset
    flush("flush")
    content_type = ContentType.objects.get_for_model(Item)
    for n in range(2 * Container.objects.count()):
        Container.objects.create(name=f"extra{n}", content_type=content_type, key_columns="value")
