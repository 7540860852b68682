"""Which tables a migrate plan touched (cachelayer/tasks/migrating.py), and the
schema fingerprint (cachelayer/core/schema.py): pure, no database."""

import subprocess
import sys

import pytest
from django.apps import apps
from django.db import migrations, models

from cachelayer.core.schema import describe, fingerprint
from cachelayer.tasks.migrating import ANY_TABLE, touched_tables
from tests.helpers import ROOT, environment


def plan_of(*operations, backwards=False):
    migration = migrations.Migration("0042_change", "testapp")
    migration.operations = list(operations)
    return [(migration, backwards)]


NULLABLE = models.IntegerField(null=True)
TOUCHED = {
    "AlterField": (migrations.AlterField("item", "value", models.IntegerField(default=1)), {"testapp_item"}),
    "RemoveField": (migrations.RemoveField("item", "text"), {"testapp_item"}),
    "RenameField": (migrations.RenameField("item", "text", "label"), {"testapp_item"}),
    "AddField with a default": (migrations.AddField("item", "n", models.IntegerField(default=0)), {"testapp_item"}),
    "AddField with a db_default": (
        migrations.AddField("item", "n", models.IntegerField(db_default=0)),
        {"testapp_item"},
    ),
    "AddField, nullable": (migrations.AddField("item", "n", NULLABLE), set()),
    "AlterField of an m2m": (
        migrations.AlterField("team", "members", models.ManyToManyField("testapp.member", related_name="teams")),
        {"testapp_team", "testapp_team_members"},
    ),
    "RemoveField of an m2m": (migrations.RemoveField("team", "members"), {"testapp_team", "testapp_team_members"}),
    "SeparateDatabaseAndState": (
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.AlterField("pet", "value", models.IntegerField(default=2))],
            state_operations=[migrations.AlterField("item", "value", models.IntegerField(default=2))],
        ),
        {"testapp_pet"},
    ),
    "state only": (
        migrations.SeparateDatabaseAndState(state_operations=[migrations.RemoveField("item", "text")]),
        set(),
    ),
    "RunSQL": (migrations.RunSQL("UPDATE testapp_item SET value = 1"), ANY_TABLE),
    "RunPython": (migrations.RunPython(migrations.RunPython.noop), ANY_TABLE),
    "a model the state does not know": (migrations.AlterField("gone", "value", NULLABLE), ANY_TABLE),
    "AddIndex": (migrations.AddIndex("item", models.Index(fields=["value"], name="item_value")), set()),
    "AlterModelOptions": (migrations.AlterModelOptions("item", {"ordering": ["value"]}), set()),
}


@pytest.mark.parametrize("case", TOUCHED)
def test_touched_tables(case):
    operation, tables = TOUCHED[case]
    assert touched_tables(plan_of(operation), apps) == tables


def test_an_undone_add_field_drops_its_column_and_touches_its_table():
    assert touched_tables(plan_of(migrations.AddField("item", "n", NULLABLE), backwards=True), apps) == {"testapp_item"}


def test_tables_of_every_migration_of_the_plan_add_up():
    plan = plan_of(TOUCHED["AlterField"][0]) + plan_of(TOUCHED["SeparateDatabaseAndState"][0])
    assert touched_tables(plan, apps) == {"testapp_item", "testapp_pet"}
    assert touched_tables(None, apps) == set()  # flush sends post_migrate without a plan


def described(field) -> tuple:
    field.set_attributes_from_name("field")  # as on a model
    return describe(field)


@pytest.mark.parametrize(
    "before, after",
    [
        (models.DecimalField(max_digits=6, decimal_places=3), models.DecimalField(max_digits=6, decimal_places=2)),
        (models.DecimalField(max_digits=6, decimal_places=2), models.DecimalField(max_digits=5, decimal_places=2)),
        (models.CharField(max_length=20), models.CharField(max_length=10)),
        (models.CharField(max_length=20), models.CharField(max_length=20, db_column="other")),
        (models.CharField(max_length=20), models.CharField(max_length=20, db_collation="C")),
        (models.IntegerField(), models.IntegerField(null=True)),
        (models.IntegerField(), models.BigIntegerField()),
        (models.DateTimeField(), models.DateTimeField(auto_now=True)),
    ],
)
def test_a_parameter_that_changes_stored_values_changes_the_description(before, after):
    assert described(before) != described(after)


@pytest.mark.parametrize(
    "change",
    [
        {"verbose_name": "amount"},
        {"help_text": "in euros"},
        {"blank": True},
        {"choices": [(1, "one")]},
        {"validators": [lambda value: None]},
        {"editable": False},
        {"error_messages": {"null": "no"}},
    ],
)
def test_what_never_reaches_the_column_changes_nothing(change):
    assert described(models.IntegerField()) == described(models.IntegerField(**change))


@pytest.mark.slow  # starts a process
def test_the_fingerprint_is_the_same_in_every_process():
    """No address, no hash order: another process (another PYTHONHASHSEED) computes the same."""
    labels = ["testapp.Item", "testapp.Team", "testapp.Pet", "auth.User", "migrapp.Price"]
    here = [fingerprint(apps.get_model(label), "pk", "") for label in labels]
    code = (
        "import django; django.setup(); from django.apps import apps; "
        "from cachelayer.core.schema import fingerprint; "
        f"print([fingerprint(apps.get_model(label), 'pk', '') for label in {labels!r}])"
    )
    for seed in ("1", "2"):
        there = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**environment(), "PYTHONHASHSEED": seed},
            timeout=60,
            check=True,
        ).stdout
        assert there.strip() == repr(here)


def test_a_default_no_migration_could_write_is_named_never_by_its_address():
    description = repr(described(models.IntegerField(default=lambda: 1)))
    assert ".<locals>.<lambda>" in description and " at 0x" not in description
