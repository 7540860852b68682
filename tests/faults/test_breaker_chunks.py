"""The breaker judges servers, not requests: one oversized multi-get is
split into requests of CHUNK_KEYS keys, so it cannot stall a connection
past the socket timeout and open the breaker for every read of the process."""

import logging
import os
import threading
import time

import pytest
from django.db import connections

from tests.faults.conftest import write_report
from tests.testapp.models import Item

pytestmark = pytest.mark.one_database  # the breaker judges cache servers; the database is not under test

# 20,000 keys a request already stall past the timeout without chunks; the
# review's 200,000 (CACHELAYER_TEST_CHUNK_KEYS=200000) take minutes on a shared machine.
KEYS = int(os.environ.get("CACHELAYER_TEST_CHUNK_KEYS", 20_000))
CONCURRENT = 4


@pytest.mark.parametrize("kind", ["memcached", "redis"])
def test_oversized_multi_gets_do_not_open_the_breaker(kind, start_servers, use_servers, caplog):
    (server,) = start_servers(kind)
    adapter = use_servers([server], SOCKET_TIMEOUT=0.5)
    (breaker,) = adapter.breakers.values()
    present = [item.pk for item in Item.objects.bulk_create(Item(value=7) for _ in range(100))]
    keys = present + list(range(10**7, 10**7 + KEYS - len(present)))  # the rest absent (cached as absent)
    errors, sizes = [], []
    caplog.set_level(logging.WARNING, logger="cachelayer")

    def read():
        try:
            sizes.append(len(Item.cached.get_many(keys)))
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            connections.close_all()

    started = time.monotonic()
    for _ in range(2):  # misses and fills, then hits
        workers = [threading.Thread(target=read) for _ in range(CONCURRENT)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=300)
    write_report(
        f"breaker-chunks-{kind}",
        keys=KEYS,
        concurrent=CONCURRENT,
        seconds=round(time.monotonic() - started, 3),
        failures_logged=sum("failed" in r.getMessage() for r in caplog.records),
        errors=len(errors),
    )
    assert errors == []
    assert sizes == [len(present)] * 2 * CONCURRENT
    assert [r.getMessage() for r in caplog.records if "failed" in r.getMessage()] == []  # no failure, no open breaker
    assert breaker.failures == 0 and breaker.open_until == 0
    assert not adapter.dirty_servers()
