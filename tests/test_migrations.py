"""Migrations are checked in: a model change without its migration fails the test command.

What ``makemigrations --check`` computes, without its database consistency
check (which would open every alias, the follower tests' private server too).
"""

import pytest
from django.apps import apps
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.questioner import NonInteractiveMigrationQuestioner
from django.db.migrations.state import ProjectState


@pytest.mark.parametrize("app", ["cachelayer", "demo"])
def test_no_model_change_lacks_a_migration(app):
    loader = MigrationLoader(None, ignore_no_migrations=True)
    autodetector = MigrationAutodetector(
        loader.project_state(),
        ProjectState.from_apps(apps),
        NonInteractiveMigrationQuestioner(specified_apps={app}, dry_run=True),
    )
    changes = autodetector.changes(graph=loader.graph, trim_to_apps={app}, convert_apps={app})
    assert app not in changes, f"{app} has model changes without a migration: {changes[app][0].operations}"


# `migrate` of a database that holds nothing yet, in three app orders: cachelayer's
# receivers and checks must not poison the migration's transaction (PostgreSQL aborts a
# transaction at its first failed statement) by probing tables that do not exist yet.
MIGRATE_ORDERS = {
    "all at once": [[]],
    "cachelayer first": [["cachelayer"], []],
    "cachelayer last": [["contenttypes"], ["auth"], ["demo"], []],
}


@pytest.fixture
def fresh_database(transactional_db, tmp_path):
    """The URL of a new, empty database on the test database's server, dropped afterwards."""
    from django.db import connection

    from tests.helpers import database_url

    if connection.vendor == "sqlite":
        yield database_url(str(tmp_path / "fresh.sqlite3"))
        return
    name = f"{connection.settings_dict['NAME']}_fresh"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        cursor.execute(f"CREATE DATABASE {name}")
    yield database_url(name)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.mark.slow  # runs manage.py
@pytest.mark.parametrize("order", MIGRATE_ORDERS)
def test_migrate_from_an_empty_database_in_any_app_order(fresh_database, order):
    from tests.helpers import manage

    for apps_first in MIGRATE_ORDERS[order]:
        done = manage("migrate", "--noinput", *apps_first, env={"CACHELAYER_DB": fresh_database})
        assert done.returncode == 0, done.stderr[-3000:]
    done = manage("migrate", "--check", env={"CACHELAYER_DB": fresh_database})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
