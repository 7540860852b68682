"""Migrations that change what a column stores outdate the payloads (issue 24, defect 5).

Real migrations (tests/migrapp) run on the test database with a row cached
before them: 0002 rounds a DecimalField from 3 to 2 places (the database
rounds 1.235 to 1.24, or SQLite's converter does), 0003 turns a nullable
column NOT NULL with a default (every database fills the NULLs). A process
that runs the code of an older migration is this one with the model's
fields set back to what that migration declared.
"""

import contextlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import NOT_PROVIDED

from cachelayer.engine.registry import registry
from tests.layer.test_write_paths import read_fresh
from tests.migrapp.models import Price
from tests.testapp.models import Item

# What each migration declares, where it differs from models.py (0003).
CODE_AT = {
    "0001_initial": {"amount": {"decimal_places": 3}, "stock": {"null": True, "default": NOT_PROVIDED}},
    "0002_amount_cents": {"stock": {"null": True, "default": NOT_PROVIDED}},
    "0003_stock_default": {},
}


@contextlib.contextmanager
def code_at(migration):
    """Run as a process deployed with the models of ``migration`` would (definitions rebuilt)."""
    saved = []
    for name, attributes in CODE_AT[migration].items():
        field = Price._meta.get_field(name)
        for attribute, value in attributes.items():
            saved.append((field, attribute, getattr(field, attribute)))
            setattr(field, attribute, value)
    apps.clear_cache()  # fields changed in place: what was built from them goes
    registry.load()
    try:
        yield
    finally:
        for field, attribute, value in saved:
            setattr(field, attribute, value)
        apps.clear_cache()
        registry.load()


def migrate_to(migration):
    """Apply or unapply migrapp's migrations with the executor alone: what a DBA
    applying ``sqlmigrate``'s output does (no post_migrate)."""
    MigrationExecutor(connection).migrate([("migrapp", migration)])


@pytest.fixture
def cached_before_migrations():
    """A Price row at 0001 (1.235, stock NULL), cached by a process of that code;
    migrapp is migrated forward again afterwards."""
    migrate_to("0001_initial")
    try:
        with code_at("0001_initial"):
            price = Price.objects.create(amount=Decimal("1.235"), stock=None)
            assert (read_fresh(Price, price.pk).amount, read_fresh(Price, price.pk).stock) == (Decimal("1.235"), None)
        yield price
    finally:
        migrate_to("0003_stock_default")


def as_read(instance):
    return (instance.amount, instance.stock)


def test_new_code_misses_payloads_of_a_field_whose_parameters_changed(cached_before_migrations):
    """The schema fingerprint covers decimal_places (deconstruct()), not only type and null:
    even with no generation bump (the migration applied outside ``migrate``), the
    payload of the 3-place field is no hit for the 2-place one."""
    pk = cached_before_migrations.pk
    migrate_to("0002_amount_cents")
    with code_at("0002_amount_cents"):
        assert as_read(read_fresh(Price, pk)) == as_read(Price.objects.get(pk=pk)) == (Decimal("1.24"), None)


@pytest.mark.parametrize("reader", ["0001_initial", "0003_stock_default"])
def test_migrate_outdates_the_tables_its_operations_touched(cached_before_migrations, reader):
    """After ``migrate``, a process of the old code (its fingerprint unchanged) and one of
    the new code both read what the ORM reads: AlterField bumped the container's generation."""
    pk = cached_before_migrations.pk
    call_command("migrate", "migrapp", verbosity=0)
    with code_at(reader):
        assert as_read(read_fresh(Price, pk)) == as_read(Price.objects.get(pk=pk))
        assert read_fresh(Price, pk).stock == 0


def test_migrate_leaves_the_containers_of_other_tables_alone(cached_before_migrations, django_assert_num_queries):
    item = Item.objects.create(value=5)
    assert read_fresh(Item, item.pk).value == 5
    call_command("migrate", "migrapp", verbosity=0)
    with django_assert_num_queries(0):
        assert read_fresh(Item, item.pk).value == 5
