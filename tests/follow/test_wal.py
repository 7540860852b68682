"""Row changes written outside Django (a psycopg connection of the test's own) reach the
cache through cache_follow's WAL source (logical decoding, wal2json, a replication slot).

Each test warms the cache, writes with raw SQL, shows the cache is stale
(nothing in this process saw the write), runs the follower to the end of the
WAL (in this process: the --once loop; test_wal_process.py runs cache_follow
processes), and shows the cache serves the new data.
"""

from __future__ import annotations

from django.db import connections

from cachelayer.models import FollowerPosition
from tests.follow.conftest import pytestmark_wal
from tests.follow.test_rows import cached, cached_values
from tests.testapp.models import Comment, Item, Post, Slugged

pytestmark = pytestmark_wal


def items(*values):
    Item.objects.using("wal").bulk_create([Item(id=i, value=v) for i, v in enumerate(values, 1)])


def comments(post):
    return sorted(comment.value for comment in Comment.cached.filter(post=post))


def test_raw_update_insert_delete(walled, django_assert_num_queries):
    items(1, 2, 3)
    walled.follow_here()  # past the inserts: what follows is only the raw SQL
    assert cached_values(1, 2, 3, 4) == [1, 2, 3, None]  # 4 is cached as absent
    walled.sql(
        "UPDATE testapp_item SET value = 10 WHERE id = 1; INSERT INTO testapp_item (id, value) VALUES (4, 4);"
        "DELETE FROM testapp_item WHERE id = 3"
    )
    assert cached_values(1, 2, 3, 4) == [1, 2, 3, None]  # stale: no in-process path saw it
    done = walled.follow_here()
    assert "3 row events" in done
    with django_assert_num_queries(0, connection=connections["wal"]):
        assert cached_values(2) == [2]  # untouched: still a hit
    assert cached_values(1, 3, 4) == [10, None, 4]


def test_key_and_index_changes_outdate_old_and_new(walled):
    Slugged.objects.using("wal").create(slug="old", value=1)
    first, second = Post.objects.using("wal").create(title="a"), Post.objects.using("wal").create(title="b")
    moved = Comment.objects.using("wal").create(post=first, value=1)
    Comment.objects.using("wal").create(post=first, value=2)
    walled.follow_here()
    assert cached(Slugged, "old").value == 1 and cached(Slugged, "new") is None
    assert (comments(first), comments(second)) == ([1, 2], [])
    walled.sql(
        f"UPDATE testapp_slugged SET slug = 'new' WHERE slug = 'old';"
        f"UPDATE testapp_comment SET post_id = {second.pk} WHERE id = {moved.pk}"
    )
    assert (comments(first), comments(second)) == ([1, 2], [])  # stale
    walled.follow_here()
    assert cached(Slugged, "old") is None and cached(Slugged, "new").value == 1
    assert (comments(first), comments(second)) == ([2], [1])  # the old list too: its value came from the WAL


def test_rolled_back_transaction_changes_nothing(walled, django_assert_num_queries):
    items(1, 2)
    walled.follow_here()
    assert cached_values(1, 2) == [1, 2]
    walled.sql("BEGIN; UPDATE testapp_item SET value = 99 WHERE id = 1; ROLLBACK")
    walled.sql("UPDATE testapp_item SET value = 22 WHERE id = 2")
    done = walled.follow_here()
    assert " transactions, 1 row events" in done  # the rollback decoded to nothing
    with django_assert_num_queries(0, connection=connections["wal"]):
        assert cached_values(1) == [1]  # never invalidated
    assert cached_values(2) == [22]


def test_truncate_bumps_the_generation(walled):
    items(1, 2)
    walled.follow_here()
    assert cached_values(1, 2) == [1, 2]
    walled.sql("TRUNCATE testapp_item")
    done = walled.follow_here()
    assert cached_values(1, 2) == [None, None]
    assert "0 row events" in done and "0 generation bumps" not in done
    assert FollowerPosition.objects.get(database="wal").log_file == "cachelayer_wal"


def test_an_alter_table_that_rewrites_rows_bumps_the_generation(walled):
    """Logical decoding carries no DDL and no row an ALTER TABLE rewrites: the DDL log's
    event trigger (cache_follow --ddl-log) puts the statement in the stream, in its transaction."""
    items(1, 2)
    walled.follow_here()
    assert cached_values(1, 2) == [1, 2]
    walled.sql("ALTER TABLE testapp_item ALTER COLUMN value TYPE integer USING value * 10")
    done = walled.follow_here()
    assert "0 row events" in done and "0 generation bumps" not in done
    assert cached_values(1, 2) == [10, 20]


def test_a_transaction_bigger_than_one_peek_comes_whole(walled):
    """A peek returns whole transactions: one of more changes than PEEK_LIMIT is read at once,
    every row of it outdated, and the slot moves past it."""
    from cachelayer.tasks.follow.walstream import PEEK_LIMIT

    count = PEEK_LIMIT + 500
    walled.sql(f"INSERT INTO testapp_item (id, value) SELECT n, 0 FROM generate_series(1, {count}) n")
    walled.follow_here()
    sample = [1, count // 2, count]
    assert cached_values(*sample) == [0, 0, 0]
    walled.sql("UPDATE testapp_item SET value = id")
    done = walled.follow_here()
    # Rows, not transactions, are counted: cachelayer's own writes meanwhile (a pool
    # membership renewed, say) are transactions with no row of a followed table.
    assert f" transactions, {count} row events" in done
    assert cached_values(*sample) == sample
    assert " transactions, 0 row events" in walled.follow_here()  # nothing read twice
