"""64 concurrent misses on one key cost at most two SQL queries (leases)."""

import threading

from django.db import connection

from cachelayer.engine import versions
from tests.testapp.models import Item

THREADS = 64


def test_concurrent_misses_share_one_query(monkeypatch):
    item = Item.objects.create(value=42)
    queries, lock = [], threading.Lock()
    real = versions.query_rows

    def counting(*args, **kwargs):
        with lock:
            queries.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(versions, "query_rows", counting)
    start, values, errors = threading.Barrier(THREADS), [], []

    def read():
        try:
            start.wait(10)
            values.append(Item.cached.get(item.pk).value)
        except Exception as exc:  # reported below, never swallowed
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=read) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert values == [42] * THREADS
    assert 1 <= len(queries) <= 2, f"{len(queries)} SQL queries for {THREADS} concurrent misses (0: the count missed them)"
