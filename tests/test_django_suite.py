"""scripts/django_suite.py's verdicts: a listed difference excuses a failure only
in its mode and on the database its reason holds on."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "django_suite.py"
spec = importlib.util.spec_from_file_location("django_suite", SCRIPT)
suite = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suite)

MARIADB_ONLY = "composite_pk.test_delete.CompositePKDeleteTests.test_delete_user_by_pk"
EVERYWHERE = "delete.tests.FastDeleteTests.test_fast_delete_qs"  # listed by its class


def output(*failed: str) -> str:
    return "".join(f"FAIL: {test.rpartition('.')[2]} ({test})\n" for test in failed)


@pytest.mark.parametrize(
    ("database", "mode", "bugs"),
    [
        ("mysql://u:p@127.0.0.1:3306/db", "mapped", []),
        ("sqlite", "mapped", [MARIADB_ONLY]),
        ("postgresql://u:p@127.0.0.1:5432/db", "mapped", [MARIADB_ONLY]),
        ("mysql://u:p@127.0.0.1:3306/db", "installed", [MARIADB_ONLY, EVERYWHERE]),
    ],
)
def test_a_listed_difference_excuses_a_failure_only_where_its_reason_holds(monkeypatch, database, mode, bugs):
    monkeypatch.setenv("CACHELAYER_DB", database)
    assert suite.unexpected(mode, output(MARIADB_ONLY, EVERYWHERE)) == bugs
