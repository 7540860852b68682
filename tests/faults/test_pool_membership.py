"""A memcached pool whose server list differs between processes (a rolling
deploy that adds a server; a server put back without a flush) never serves a
stale row: this process reads through three servers, a second OS process
through two of them, and the second one's writes must reach this one's reads."""

import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from cachelayer.adapters.routing import rendezvous
from cachelayer.core import conf
from cachelayer.engine import topology
from cachelayer.models import PoolMembership
from tests.faults.conftest import ALIAS, BACKENDS
from tests.faults.test_processes import spawn
from tests.testapp.models import Item

pytestmark = pytest.mark.slow  # worker processes

TTL = 60  # POOL_MEMBERSHIP_TTL: no list expires by itself during a test, even on a loaded machine


def save_elsewhere(pk: int, value: int, servers, client: str) -> None:
    """Commit ``Item(pk).value = value`` in another OS process that reads through ``servers``."""
    caches = {**django_settings.CACHES, ALIAS: {"BACKEND": BACKENDS[client], "LOCATION": [s.location for s in servers]}}
    cachelayer = {**conf.user_settings()}
    worker = spawn("save", {"pk": pk, "value": value, "caches": caches}, cachelayer)
    assert worker.wait(timeout=60) == 0


def row_on(server, others, pks) -> int:
    """Return a pk that the full list routes to ``server`` (and the shorter list elsewhere)."""
    return next(pk for pk in pks if rendezvous([s.location for s in others], str(pk)) == server.location)


@pytest.mark.parametrize("client", ["memcached", "pylibmc"])
def test_a_process_without_the_new_server_outdates_what_it_holds(
    client, start_servers, use_servers, django_assert_num_queries
):
    a, b, c = start_servers("memcached", 3)
    use_servers([a, b, c], client=client, POOL_MEMBERSHIP_TTL=TTL)
    items = Item.objects.bulk_create([Item(value=1) for _ in range(40)])
    pk = row_on(c, [a, b, c], [item.pk for item in items])
    assert Item.cached.get(pk).value == 1  # filled on C
    with django_assert_num_queries(0):
        assert Item.cached.get(pk).value == 1

    save_elsewhere(pk, 2, [a, b], client)  # the old deploy: it bumps the version on A or B only

    assert Item.cached.get(pk).value == 2  # this process knows of the other list now: C's copy is not read
    assert sorted(PoolMembership.objects.values_list("servers", flat=True)) == sorted(
        [sorted([a.location, b.location]), sorted([a.location, b.location, c.location])]
    )


@pytest.mark.parametrize("client", ["memcached"])
def test_a_server_put_back_is_outdated_when_the_other_list_retires(
    client, start_servers, use_servers, django_assert_num_queries
):
    a, b, c = start_servers("memcached", 3)
    adapter = use_servers([a, b, c], client=client, POOL_MEMBERSHIP_TTL=TTL)
    items = Item.objects.bulk_create([Item(value=1) for _ in range(40)])
    pk = row_on(c, [a, b, c], [item.pk for item in items])
    assert Item.cached.get(pk).value == 1  # filled on C, which then leaves the pool ...

    save_elsewhere(pk, 2, [a, b], client)  # ... while processes without C write the row
    assert Item.cached.get(pk).value == 2

    # The two-server list is no longer renewed: once it expired, the next check retires
    # it, and C (which its readers trust for more keys now) is outdated first.
    PoolMembership.objects.exclude(servers=sorted(adapter.servers)).update(
        last_seen=PoolMembership.objects.get(servers=sorted(adapter.servers)).last_seen.replace(year=2000)
    )
    topology.stale(adapter)
    assert Item.cached.get(pk).value == 2  # not C's old payload
    assert adapter.others == []
    assert PoolMembership.objects.count() == 1
    with django_assert_num_queries(0):
        assert Item.cached.get(pk).value == 2  # C is trusted (and filled) again


def listed_elsewhere(client: str, last_seen) -> str:
    """List, under the alias, one server of another kind of cache than ``client`` (as a
    deploy that moves the alias from Redis to memcached, or back, leaves it)."""
    elsewhere = "127.0.0.1:1" if client == "redis" else "redis://127.0.0.1:1/0"
    PoolMembership.objects.create(
        cache_alias=ALIAS, fingerprint=topology.fingerprint([elsewhere]), servers=[elsewhere], last_seen=last_seen
    )
    return elsewhere


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")  # the check raised in its thread
@pytest.mark.parametrize("client", ["memcached", "pylibmc", "redis"])
def test_a_live_list_of_another_kind_of_cache_keeps_every_read_on_the_database(
    client, start_servers, use_servers, django_assert_num_queries
):
    """The other kind's servers are not addresses this client can reach, so they cannot
    be told of this list: the check completes (it raised in its thread, on every check),
    and no key is read from the cache while that list is live."""
    elsewhere = listed_elsewhere(client, timezone.now())
    (server,) = start_servers("redis" if client == "redis" else "memcached")
    adapter = use_servers([server], client=client, POOL_MEMBERSHIP_TTL=TTL)  # its first read checks the topology
    assert adapter.health.trusted_until > time.monotonic()  # checked
    item = Item.objects.create(value=1)
    for _ in range(2):
        with django_assert_num_queries(1):  # never filled, never read from the cache
            assert Item.cached.get(item.pk).value == 1
    assert PoolMembership.objects.filter(servers=[elsewhere]).exists()  # listed until it expires


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")  # the check raised in its thread
@pytest.mark.parametrize("client", ["memcached", "redis"])
def test_an_expired_list_of_another_kind_of_cache_retires_and_hits_resume(
    client, start_servers, use_servers, django_assert_num_queries
):
    """Once the other kind's processes are gone their list retires, though its servers
    could not be outdated (this cache never reads them; before, the check raised on
    them in its thread)."""
    elsewhere = listed_elsewhere(client, timezone.now() - timedelta(seconds=2 * TTL))
    (server,) = start_servers("redis" if client == "redis" else "memcached")
    use_servers([server], client=client, POOL_MEMBERSHIP_TTL=TTL)
    item = Item.objects.create(value=1)
    assert Item.cached.get(item.pk).value == 1
    with django_assert_num_queries(0):
        assert Item.cached.get(item.pk).value == 1
    assert not PoolMembership.objects.filter(servers=[elsewhere]).exists()
