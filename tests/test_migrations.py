"""Migrations are checked in: a model change without its migration fails the test command."""

import pytest
from django.core.management import call_command


@pytest.mark.django_db
@pytest.mark.parametrize("app", ["cachelayer", "demo"])
def test_no_model_change_lacks_a_migration(app, capsys):
    try:
        call_command("makemigrations", app, "--check", "--dry-run", verbosity=1)
    except SystemExit as exc:
        pytest.fail(f"{app} has model changes without a migration:\n{capsys.readouterr().out}\n(exit {exc.code})")
