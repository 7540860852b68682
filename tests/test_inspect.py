"""cache_inspect and inspection.inspect(): staleness made for real (raw SQL sends no signal), on every cache."""

import datetime
import decimal
import json
import math
import pickle
import uuid
from fractions import Fraction
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from cachelayer.core.serializers import SERIALIZERS
from cachelayer.exceptions import CachelayerError
from cachelayer.models import CachePolicy, Container
from cachelayer.tasks import inspection
from tests.faults.servers import free_port
from tests.testapp.models import Item, Typed

STATS_PAGE = "/admin/cachelayer/container/stats/"


@pytest.fixture
def items(backend):
    """Five rows, all read through the cache (cached), ids 1..5."""
    rows = [Item.objects.create(id=i, value=i * 10, text=f"t{i}") for i in range(1, 6)]
    Item.cached.get_many([row.pk for row in rows])
    return rows


def inspect_command(*args) -> tuple[str, CommandError | None]:
    """Run cache_inspect; return its output and the CommandError it ended with (or None)."""
    out = StringIO()
    try:
        call_command("cache_inspect", *args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def raw_sql(sql: str, *params) -> None:
    """Write behind cachelayer's back: raw SQL sends no signal, so nothing is invalidated."""
    with connection.cursor() as cursor:
        cursor.execute(sql.replace("TABLE", connection.ops.quote_name(Item._meta.db_table)), params)


def test_a_clean_cache_reports_nothing_stale_and_fills_nothing(items, django_assert_num_queries):
    Item.objects.create(id=6, value=60)  # in the database, never read: not cached
    with pytest.raises(Item.DoesNotExist):
        Item.cached.get(7)  # a negative entry for a row that does not exist: right, and not scanned
    output, error = inspect_command("testapp_item")
    assert error is None, error
    assert (
        "testapp_item: 6 rows checked (all rows), 5 cached, 0 stale, 0 missing-but-present: consistency 100%" in output
    )
    with django_assert_num_queries(1):  # the inspection did not fill row 6
        assert Item.cached.get(6).value == 60


def test_a_raw_update_is_stale_and_fails_the_command(items):
    raw_sql("UPDATE TABLE SET value = %s WHERE id = %s", 999, 3)
    assert Item.cached.get(3).value == 30  # what readers are served now
    output, error = inspect_command("testapp_item")
    assert error is not None and error.returncode == 1 and str(error) == "stale entries in testapp_item"
    assert "5 rows checked (all rows), 5 cached, 1 stale, 0 missing-but-present: consistency 80%" in output
    assert "\n  stale: 3\n" in output
    output, error = inspect_command("testapp_item", "--json")
    report = json.loads(output)
    assert report["ok"] is False and error.returncode == 1
    found = report["containers"]["testapp_item"]
    assert {k: found[k] for k in ("checked", "cached", "stale", "missing_but_present", "stale_keys", "ok")} == {
        "checked": 5,
        "cached": 5,
        "stale": 1,
        "missing_but_present": 0,
        "stale_keys": ["3"],
        "ok": False,
    }
    assert found["consistency"] == 0.8 and found["nines"] == "80%" and found["scope"] == "all rows"


def test_a_cached_absent_then_a_raw_insert_is_missing_but_present(items):
    with pytest.raises(Item.DoesNotExist):
        Item.cached.get(42)  # cached as absent
    raw_sql("INSERT INTO TABLE (id, value, text) VALUES (%s, %s, %s)", 42, 1, "raw")
    result = inspection.inspect(Item)
    assert (result.checked, result.cached, result.stale, result.missing_but_present) == (6, 6, 0, 1)
    assert result.missing_but_present_keys == ["42"] and not result.ok
    assert result.nines == "83%" and math.isclose(result.consistency, 5 / 6)


def test_a_raw_delete_is_found_when_its_key_is_named(items):
    raw_sql("DELETE FROM TABLE WHERE id = %s", 2)
    assert inspection.inspect(Item).ok  # a full scan walks the rows that exist
    result = inspection.inspect(Item, keys=[2, 4, 100])
    assert (result.checked, result.cached, result.stale, result.stale_keys) == (3, 2, 1, ["2"])
    assert result.scope == "3 keys"


def test_sample_checks_that_many_rows_chosen_at_random(items):
    for pk in range(6, 21):
        Item.objects.create(id=pk, value=pk)
    Item.cached.get_many(range(1, 21))
    raw_sql("UPDATE TABLE SET value = value + 1")  # every row stale
    picked = set()
    for _ in range(5):
        result = inspection.inspect("testapp_item", sample=3)
        assert (result.checked, result.stale, result.scope) == (3, 3, "sample of 3")
        picked.add(frozenset(result.stale_keys))
    assert len(picked) > 1  # not the first three rows every time
    output, error = inspect_command("testapp_item", "--sample", "50")
    assert "20 rows checked (sample of 50), 20 cached, 20 stale" in output and error.returncode == 1
    assert inspect_command("testapp_item", "--sample", "0")[1].returncode == 1


def test_a_write_between_the_cache_read_and_the_row_read_is_not_stale(items):
    """The write commits and invalidates after the first cache read: a second look clears it."""
    written = []

    def write_before_the_row_query(execute, sql, params, many, context):
        if " IN (" in sql and "testapp_item" in sql and not written:
            written.append(sql)
            Item.objects.filter(pk=3).update(value=333)  # commits, then invalidates
        return execute(sql, params, many, context)

    with connection.execute_wrapper(write_before_the_row_query):
        result = inspection.inspect(Item)
    assert written and result.ok and result.cached == 5, result


def test_an_edit_during_an_inspection_is_picked_up(items):
    """The configuration version moves between two chunks: the rest is checked under the new definition."""
    container = Container.objects.get(name="testapp_item")

    def edit(field, value):
        def after_the_first_chunk(rows):
            if not edited:
                edited.append(rows)
                setattr(container, field, value)
                container.save()  # bumps the configuration version after commit

        edited = []
        return after_the_first_chunk

    result = inspection.inspect(Item, chunk_size=2, progress=edit("timeout", 60))
    assert (result.checked, result.cached, result.skipped) == (5, 2, None) and result.ok  # an edit outdates payloads
    db_only = CachePolicy.objects.create(policy_name="d", get_policy="db_only")
    result = inspection.inspect(Item, chunk_size=2, progress=edit("policy", db_only))
    assert result.checked == 2 and result.skipped == "get_policy is db_only, so reads do not fill the cache"


def test_keys_written_by_the_current_transaction_are_read_from_the_database(items, on_server_database):
    """Under READ COMMITTED (Django's MariaDB default) an inspection may run inside ``atomic``."""
    with transaction.atomic():
        Item.objects.filter(pk=3).update(value=333)  # invalidated at commit: the cache still holds 30
        result = inspection.inspect(Item)
    assert (result.checked, result.cached) == (5, 4) and result.ok, result


def test_an_inspection_inside_a_snapshot_transaction_is_refused(items):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: its transactions are snapshots; MariaDB's default is READ COMMITTED")
    with transaction.atomic(), pytest.raises(CachelayerError, match="not READ COMMITTED"):
        inspection.inspect(Item)


def test_the_admin_stats_page_shows_the_last_inspection(admin_client, items):
    raw_sql("UPDATE TABLE SET text = %s WHERE id = %s", "changed", 5)
    page = admin_client.get(STATS_PAGE).content.decode()
    assert "<th>last inspection</th>" in page and "checked (all rows)" not in page
    inspection.inspect(Item)
    page = admin_client.get(STATS_PAGE).content.decode()
    # a few words in the table, the whole sentence as their tooltip
    assert (
        ' UTC: 5 checked (all rows), 1 stale, 0 missing-but-present, 80% consistent">1 stale of 5 checked</span>'
        in page
    )


def test_a_container_that_reads_no_cache_is_skipped(items):
    container = Container.objects.get(name="testapp_item")
    container.policy = CachePolicy.objects.create(policy_name="p", get_policy="db_only")
    container.save()
    raw_sql("UPDATE TABLE SET value = 0")  # stale payloads, but no reader is served them
    output, error = inspect_command("testapp_item")
    assert error is None and output == "testapp_item: skipped (get_policy is db_only, so reads do not fill the cache)\n"
    result = inspection.inspect(Item)
    assert result.skipped and result.checked == 0 and result.ok
    container.policy = CachePolicy.objects.create(policy_name="off", get_policy="disabled")
    container.save()
    assert "get_policy" in inspection.inspect(Item).skipped


def test_an_unreachable_cache_is_an_error(settings, transactional_db):
    settings.CACHES = {
        **settings.CACHES,
        "dead": {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": f"127.0.0.1:{free_port()}",
        },
    }
    settings.CACHELAYER = {"CACHE_ALIAS": "dead", "SOCKET_TIMEOUT": 0.2}
    Item.objects.create(id=1)
    output, error = inspect_command("testapp_item", "--json")
    assert error.returncode == 1
    report = json.loads(output)["containers"]["testapp_item"]
    assert report["error"].startswith("cache dead cannot be read now") and str(error) == "errors in testapp_item"


@pytest.mark.parametrize("serializer", sorted(SERIALIZERS))
def test_equal_values_of_every_type_compare_equal(backend, settings, serializer):
    settings.CACHELAYER = {**settings.CACHELAYER, "SERIALIZER": serializer}
    for pk, price in [(1, "1.10"), (2, "-0.05")]:
        Typed.objects.create(
            id=pk,
            when=datetime.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=datetime.UTC),
            day=datetime.date(2024, 2, 29),
            at=datetime.time(12, 30, 1, 5),
            span=datetime.timedelta(days=1, microseconds=7),
            price=decimal.Decimal(price),
            ratio=0.1 + 0.2,
            uid=uuid.uuid4(),
            blob=b"\x00\xff",
            data=["a", 1, [2.5, None], True, {"b": {"$": "dt", "v": "x"}, "c": []}],
        )
    Typed.cached.get_many([1, 2])
    result = inspection.inspect(Typed)
    assert (result.checked, result.cached, result.stale) == (2, 2, 0), result
    Typed.objects.filter(pk=2).update(price=decimal.Decimal("-0.06"))  # invalidated: still consistent
    Typed.cached.get(2)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(Typed._meta.db_table)} SET price = %s WHERE id = 1", ["1.11"]
        )
    result = inspection.inspect(Typed)
    assert (result.cached, result.stale, result.stale_keys) == (2, 1, ["1"]), result


def test_same_ignores_what_a_serializer_changes_and_nothing_else():
    row = (1, [1, {"a": [2]}], memoryview(b"x"), float("nan"), decimal.Decimal("1.10"))
    assert inspection.same((1, ((1, {"a": (2,)})), b"x", float("nan"), decimal.Decimal("1.1")), row)
    assert not inspection.same((1, [1, {"a": [3]}], b"x", float("nan"), decimal.Decimal("1.1")), row)
    assert not inspection.same((1, [1, {"a": [2]}], b"y", float("nan"), decimal.Decimal("1.1")), row)
    assert not inspection.same((1, [1, {"a": [2]}], b"x", 0.0, decimal.Decimal("1.1")), row)
    naive = datetime.datetime(2024, 1, 1)
    assert not inspection.same((naive,), (naive.replace(tzinfo=datetime.UTC),))


@pytest.mark.parametrize(
    "ratio, text",
    [
        (Fraction(1), "100%"),
        (Fraction(9999, 10000), "99.99%"),
        (Fraction(99995, 100000), "99.995%"),
        (Fraction(999999, 1000000), "99.9999%"),
        (Fraction(2, 3), "66%"),
        (Fraction(0), "0%"),
    ],
)
def test_nines_never_round_up_to_a_clean_record(ratio, text):
    assert inspection.nines(ratio) == text


def test_a_planted_pickle_is_not_run_by_an_inspection(items, backend, tmp_path):
    from cachelayer.adapters.registry import get_adapter
    from cachelayer.engine.registry import registry
    from tests.layer.test_bad_input import CreatesFile

    definition, marker = registry.for_cached_model(Item), tmp_path / "ran"
    get_adapter(backend).store({None: {definition.keys.data("3"): pickle.dumps(CreatesFile(marker))}}, 0)
    output, error = inspect_command("testapp_item")
    assert not marker.exists()
    assert "5 rows checked (all rows), 4 cached, 0 stale" in output  # a miss (not cached), never a value
    assert error is None, error
