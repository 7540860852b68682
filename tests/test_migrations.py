"""Migrations are checked in: a model change without its migration fails the test command."""

import pytest
from django.core.management import call_command

from django.db import router


@pytest.mark.django_db
@pytest.mark.parametrize("app", ["cachelayer", "demo"])
def test_no_model_change_lacks_a_migration(app, capsys, monkeypatch):
    # On MariaDB the test settings add aliases: mirrors of "default" (isolation
    # levels) and the follower tests' "binlog" database. makemigrations would check
    # the history of each, queries this test may not make; "default" is the one.
    monkeypatch.setattr(router, "allow_migrate", lambda db, app_label, **hints: db == "default")
    try:
        call_command("makemigrations", app, "--check", "--dry-run", verbosity=1)
    except SystemExit as exc:
        pytest.fail(f"{app} has model changes without a migration:\n{capsys.readouterr().out}\n(exit {exc.code})")
