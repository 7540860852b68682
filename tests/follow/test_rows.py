"""Row events written outside Django (the mariadb client) reach the cache through cache_follow.

Each test warms the cache, writes with raw SQL, shows the cache is stale
(nothing in this process saw the write), runs the follower, and shows the
cache serves the new data; keys nobody wrote stay cached (0 queries).
"""

import datetime
from decimal import Decimal

from django.db import connections

from cachelayer.models import FollowerPosition
from tests.follow.conftest import pytestmark_follow
from tests.testapp.models import Child, Item, Pair, Parent, Priced, Slugged

pytestmark = pytestmark_follow


def items(*values):
    Item.objects.using("binlog").bulk_create([Item(id=i, value=v) for i, v in enumerate(values, 1)])


def cached(model, key):
    """Return the instance ``Model.cached.get`` gives, or None when absent."""
    try:
        return model.cached.get(key)
    except model.DoesNotExist:
        return None


def cached_values(*ids):
    return [getattr(cached(Item, i), "value", None) for i in ids]


def test_update_insert_delete(followed, django_assert_num_queries):
    items(1, 2, 3)
    followed.follow_here()  # past the inserts: what follows is only the raw SQL
    assert cached_values(1, 2, 3, 4) == [1, 2, 3, None]  # 4 is cached as absent
    followed.sql(
        "UPDATE testapp_item SET value = 10 WHERE id = 1; INSERT INTO testapp_item (id, value) VALUES (4, 4);"
        "DELETE FROM testapp_item WHERE id = 3"
    )
    assert cached_values(1, 2, 3, 4) == [1, 2, 3, None]  # stale
    followed.follow_here()
    with django_assert_num_queries(0, connection=connections["binlog"]):
        assert cached_values(2) == [2]  # untouched: still a hit
    assert cached_values(1, 3, 4) == [10, None, 4]


def test_key_column_change_outdates_old_and_new_keys(followed):
    Slugged.objects.using("binlog").create(slug="old", value=1)
    Pair.objects.using("binlog").create(left="a", right=1, value=1)
    assert cached(Slugged, "old").value == 1 and cached(Slugged, "new") is None
    assert cached(Pair, ("a", 1)).value == 1 and cached(Pair, ("a", 2)) is None
    followed.sql("UPDATE testapp_slugged SET slug = 'new' WHERE slug = 'old'; UPDATE testapp_pair SET `right` = 2")
    followed.follow_here()
    assert cached(Slugged, "old") is None and cached(Slugged, "new").value == 1
    assert cached(Pair, ("a", 1)) is None and cached(Pair, ("a", 2)).value == 1


def test_one_statement_many_rows(followed):
    items(*range(200))
    followed.follow_here()
    assert cached_values(*range(1, 201)) == list(range(200))
    followed.sql("UPDATE testapp_item SET value = value + 1000")
    summary = followed.follow_here()
    assert cached_values(*range(1, 201)) == list(range(1000, 1200))
    assert "200 row events" in summary


def test_multi_statement_transaction(followed):
    items(1, 2, 3)
    followed.follow_here()
    assert cached_values(1, 2, 3, 4) == [1, 2, 3, None]
    followed.sql(
        "BEGIN; UPDATE testapp_item SET value = 20 WHERE id = 2; INSERT INTO testapp_item (id, value) VALUES (4, 40);"
        "DELETE FROM testapp_item WHERE id = 1; COMMIT"
    )
    summary = followed.follow_here()
    assert cached_values(1, 2, 3, 4) == [None, 20, 3, 40]
    assert "1 transactions" in summary


def test_rolled_back_transaction_changes_nothing_and_position_moves_on(followed, django_assert_num_queries):
    items(1, 2)
    followed.follow_here()
    assert cached_values(1, 2) == [1, 2]
    before = FollowerPosition.objects.get(database="binlog").log_pos
    followed.sql(
        "BEGIN; UPDATE testapp_item SET value = 99 WHERE id = 1; ROLLBACK; UPDATE testapp_item SET value = 22 WHERE id = 2"
    )
    summary = followed.follow_here()
    assert "1 transactions" in summary  # the rollback left nothing in the binlog
    with django_assert_num_queries(0, connection=connections["binlog"]):
        assert cached_values(1) == [1]  # never invalidated
    assert cached_values(2) == [22]
    assert FollowerPosition.objects.get(database="binlog").log_pos > before


def test_truncate_bumps_the_generation(followed):
    items(1, 2)
    followed.follow_here()
    assert cached_values(1, 2) == [1, 2]
    followed.sql("TRUNCATE TABLE testapp_item")
    summary = followed.follow_here()
    assert cached_values(1, 2) == [None, None]
    assert "0 row events" in summary and "generation bumps" in summary


def test_alter_table_bumps_and_rows_after_it_still_map(followed):
    items(1, 2)
    assert cached_values(1, 2) == [1, 2]
    followed.sql("ALTER TABLE testapp_item ADD COLUMN extra INT NULL FIRST")  # shifts every column
    try:
        followed.sql("UPDATE testapp_item SET value = 11 WHERE id = 1")
        followed.follow_here()
        assert cached_values(1, 2) == [11, 2]
        followed.sql("UPDATE testapp_item SET value = 22 WHERE id = 2")
        followed.follow_here()
        assert cached_values(2) == [22]
    finally:
        followed.sql("ALTER TABLE testapp_item DROP COLUMN extra")


def test_sql_on_delete_cascade_outdates_the_children(followed):
    """InnoDB does not log the rows a cascade deletes: the children's containers are bumped."""
    name = followed.sql(
        "SELECT CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
        "WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = 'testapp_child'"
    ).strip()
    if name != "child_parent_cascade":  # Django's own constraint: no ON DELETE (it cascades in Python)
        followed.sql(
            f"ALTER TABLE testapp_child DROP FOREIGN KEY `{name}`, ADD CONSTRAINT child_parent_cascade "
            "FOREIGN KEY (parent_id) REFERENCES testapp_parent (id) ON DELETE CASCADE"
        )
    parent = Parent.objects.using("binlog").create(name="p")
    other = Parent.objects.using("binlog").create(name="q")
    kept = Child.objects.using("binlog").create(parent=other, value=3)
    children = [Child.objects.using("binlog").create(parent=parent, value=v) for v in (1, 2)]
    followed.follow_here()
    assert [cached(Child, c.pk).value for c in (*children, kept)] == [1, 2, 3]
    followed.sql(f"DELETE FROM testapp_parent WHERE id = {parent.pk}")
    assert cached(Child, children[0].pk) is not None  # stale
    followed.follow_here()
    assert [cached(Child, c.pk) for c in children] == [None, None]
    assert cached(Child, kept.pk).value == 3


def test_a_stored_position_from_another_binlog_history_bumps_every_generation(followed):
    """After a failover (or RESET MASTER) the stored file and offset may exist on
    the server and yet name another history: resuming there would skip writes
    never delivered. The GTID stored with the position tells the two apart."""
    items(1, 2)
    followed.follow_here()
    assert cached_values(1, 2) == [1, 2]
    followed.sql("UPDATE testapp_item SET value = 10 WHERE id = 1")  # not delivered yet
    with connections["binlog"].cursor() as cursor:
        cursor.execute("SHOW MASTER STATUS")
        log_file, log_pos = cursor.fetchone()[:2]
    # The position another server's history would leave: past that write, after a transaction this server never logged.
    FollowerPosition.objects.filter(database="binlog").update(log_file=log_file, log_pos=log_pos, gtid="0-4242-1")
    done = followed.follow()
    assert "bumped the generation of all" in done.stdout + done.stderr
    assert cached_values(1, 2) == [10, 2]
    stored = FollowerPosition.objects.get(database="binlog")
    assert (stored.log_file, stored.log_pos) >= (log_file, log_pos)


def test_a_parent_table_row_outdates_the_multi_table_children_that_cache_it(followed):
    from tests.testapp.models import Place, Restaurant

    restaurant = Restaurant.objects.using("binlog").create(name="r", value=1, seats=10)
    followed.follow_here()
    assert (cached(Restaurant, restaurant.pk).value, cached(Place, restaurant.pk).value) == (1, 1)
    followed.sql(f"UPDATE testapp_place SET value = 9 WHERE id = {restaurant.pk}")  # the parent's table only
    followed.follow_here()
    assert (cached(Restaurant, restaurant.pk).value, cached(Place, restaurant.pk).value) == (9, 9)
    followed.sql(f"UPDATE testapp_restaurant SET seats = 11 WHERE place_ptr_id = {restaurant.pk}")
    followed.follow_here()
    assert cached(Restaurant, restaurant.pk).seats == 11


def test_rows_of_another_schema_are_ignored(followed, django_assert_num_queries):
    """REPLICATION SLAVE is server-wide: the stream carries every schema's rows,
    and a table of the same name elsewhere must not outdate (or cost) anything."""
    followed.server.sql(
        f"CREATE DATABASE IF NOT EXISTS cl_other; DROP TABLE IF EXISTS cl_other.testapp_item;"
        f"CREATE TABLE cl_other.testapp_item LIKE `{followed.database}`.testapp_item"
    )
    items(1, 2)
    followed.follow_here()  # (the DDL names the table: bumped, conservatively, before the cache is warmed)
    assert cached_values(1, 2) == [1, 2]
    followed.server.sql(
        "INSERT INTO cl_other.testapp_item (id, value) VALUES (1, 10), (2, 20);"
        "UPDATE cl_other.testapp_item SET value = 30; DELETE FROM cl_other.testapp_item WHERE id = 2"
    )
    summary = followed.follow_here()
    assert "0 row events" in summary and "0 keys" in summary
    with django_assert_num_queries(0, connection=connections["binlog"]):
        assert cached_values(1, 2) == [1, 2]  # still hits


def test_decimal_and_datetime_keys_from_the_binlog_are_the_keys_reads_use(followed):
    """The follower's values (the binlog's Decimal and naive UTC datetime) make the same
    canonical keys as the ORM's (issue 28, item 2)."""
    at = datetime.datetime(2024, 2, 29, 10, 30, tzinfo=datetime.UTC)
    Priced.objects.using("binlog").create(price=Decimal("1.1"), at=at, value=1)
    by_at = Priced.cached.container("testapp_priced__by_at")
    assert cached(Priced, "1.10").value == 1 and by_at.get(at.isoformat()).value == 1
    followed.sql("UPDATE testapp_priced SET value = 2")
    followed.follow_here()
    assert cached(Priced, Decimal("1.1")).value == 2
    assert by_at.get(at.astimezone(datetime.timezone(datetime.timedelta(hours=-5)))).value == 2
