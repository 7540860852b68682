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
