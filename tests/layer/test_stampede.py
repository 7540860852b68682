"""64 concurrent misses on one key cost at most two SQL queries (leases)."""

from cachelayer.engine import loaders
from tests.layer.threads import all_at_once, count_calls
from tests.testapp.models import Item

THREADS = 64


def test_concurrent_misses_share_one_query(monkeypatch):
    item = Item.objects.create(value=42)
    queries = count_calls(monkeypatch, loaders, "query_rows")
    values, errors = all_at_once(THREADS, lambda: Item.cached.get(item.pk).value)
    assert errors == []
    assert values == [42] * THREADS
    assert 1 <= len(queries) <= 2, (
        f"{len(queries)} SQL queries for {THREADS} concurrent misses (0: the count missed them)"
    )
