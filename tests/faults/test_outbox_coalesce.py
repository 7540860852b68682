"""The outbox is bounded and coalesces: writes queued during an outage cost
one row per key (and past OUTBOX_LIMIT, one generation bump), and their
replay after recovery is quick, after which reads hit the cache at once."""

import random
import time

import pytest
from django.db import transaction
from django.db.models import F

from cachelayer.models import OutboxEntry
from tests.faults.conftest import COOLDOWN, write_report
from tests.testapp.models import Item

WRITES = 5000
ROWS = 500
PER_TRANSACTION = 50  # 100 commits, each delivering (and failing) 50 row writes


def _replay(adapter, pk, seconds: float = 30.0) -> float:
    """Read (after the cool-down) until no server is dirty; return the seconds it took."""
    time.sleep(COOLDOWN)
    started = time.monotonic()
    while adapter.dirty_servers() and time.monotonic() - started < seconds:
        Item.cached.get(pk)
    return time.monotonic() - started


@pytest.mark.parametrize("kind", ["memcached", "redis"])
def test_writes_queued_during_an_outage_coalesce_and_replay_at_once(
    kind, start_servers, use_servers, django_assert_num_queries
):
    (server,) = start_servers(kind)
    adapter = use_servers([server])
    ids = [item.pk for item in Item.objects.bulk_create(Item(value=0) for _ in range(ROWS))]
    Item.cached.get_many(ids)
    rng = random.Random(21)
    written = [rng.choice(ids[: ROWS // 2]) for _ in range(WRITES)]  # half the rows, many writes each

    server.freeze()
    try:
        started = time.monotonic()
        for start in range(0, WRITES, PER_TRANSACTION):
            with transaction.atomic():
                for pk in written[start : start + PER_TRANSACTION]:
                    Item.objects.filter(pk=pk).update(value=F("value") + 1)
        write_seconds = time.monotonic() - started
        rows = OutboxEntry.objects.count()
    finally:
        server.thaw()
    replay_seconds = _replay(adapter, ids[0])
    write_report(
        f"outbox-coalesce-{kind}",
        writes=WRITES,
        keys_written=len(set(written)),
        outbox_rows=rows,
        write_s=round(write_seconds, 3),
        replay_s=round(replay_seconds, 3),
    )
    assert rows == len(set(written))  # one row per key, however many writes it had
    assert not adapter.dirty_servers()
    assert not OutboxEntry.objects.exists()
    assert replay_seconds < 10
    untouched = ids[ROWS // 2 :]
    with django_assert_num_queries(0):  # hits at once: rows no write outdated are still cached
        Item.cached.get_many(untouched)
        for pk in untouched[:20]:
            Item.cached.get(pk)
    database = dict(Item.objects.values_list("pk", "value"))
    assert {pk: item.value for pk, item in Item.cached.get_many(ids).items()} == database


@pytest.mark.parametrize("kind", ["memcached", "redis"])
def test_past_the_bound_the_generation_is_bumped_instead(kind, start_servers, use_servers):
    (server,) = start_servers(kind)
    limit = 100
    adapter = use_servers([server], OUTBOX_LIMIT=limit)
    ids = [item.pk for item in Item.objects.bulk_create(Item(value=0) for _ in range(3 * limit))]
    Item.cached.get_many(ids)

    server.freeze()
    try:
        most = 0
        for pk in ids:  # three times the bound, each key once
            Item.objects.filter(pk=pk).update(value=1)
            most = max(most, OutboxEntry.objects.count())
        generations = OutboxEntry.objects.filter(route__isnull=True, container="testapp_item").count()
    finally:
        server.thaw()
    write_report(
        f"outbox-bound-{kind}", limit=limit, keys_written=len(ids), most_rows=most, generation_rows=generations
    )
    assert most <= limit + 1  # the key rows, and one generation bump for the one server
    assert generations == 1
    _replay(adapter, ids[0])
    assert not OutboxEntry.objects.exists()
    assert {item.value for item in Item.cached.get_many(ids).values()} == {1}
