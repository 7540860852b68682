"""The follower's pure parts: statements, positions, wal2json options (no server needed)."""

import pytest

from cachelayer.tasks.follow import ddl
from cachelayer.tasks.follow.position import Position, bytes_behind
from cachelayer.tasks.follow.wal import slot_name
from cachelayer.tasks.follow.walstream import _escape, _lsn_text


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("COMMIT", ddl.ENDS),
        ("ROLLBACK", ddl.ENDS),
        ("XA COMMIT 'x'", ddl.ENDS),
        ("BEGIN", ddl.FRAMES),
        ("SAVEPOINT `a`", ddl.FRAMES),
        ("ROLLBACK TO SAVEPOINT a", ddl.FRAMES),
        ("TRUNCATE t", ddl.CHANGES),
        ("ALTER TABLE t ADD x INT", ddl.CHANGES),
    ],
)
def test_statement_kinds(query, kind):
    assert ddl.kind(query) == kind


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("TRUNCATE testapp_item", {"testapp_item"}),
        ("rename table `db`.`testapp_item` to x", {"testapp_item"}),
        ("DROP TABLE IF EXISTS other, TESTAPP_PAIR", {"testapp_pair"}),
        ('ALTER TABLE "testapp_item" FORCE', {"testapp_item"}),
        ("ALTER TABLE testapp_items ADD x INT", set()),
        ("CREATE TABLE testapp_itemx (id INT)", set()),
    ],
)
def test_mentioned_tables(query, found):
    assert ddl.mentioned(query, ["testapp_item", "testapp_pair"]) == found


def test_bytes_behind_spans_files():
    logs = [("b.000001", 1000), ("b.000002", 500)]
    assert bytes_behind(Position("b.000001", 900), logs) == 600
    assert bytes_behind(Position("b.000002", 500), logs) == 0
    assert bytes_behind(Position("b.000000", 4), logs) is None


def test_slot_names_and_lsns():
    assert slot_name("Default-2") == "cachelayer_default_2"
    assert len(slot_name("x" * 100)) == 63  # PostgreSQL's identifier limit
    assert _lsn_text(0x1_0000_00A0) == "1/A0"  # pg_lsn's own text form


def test_add_tables_escapes_what_wal2json_splits_on():
    assert _escape("my.table,x*") == "my\\.table\\,x\\*"
