"""Trust a counter only on the server, and the server process, that wrote it.

Two things can make a server's counters equal those of an old payload again
without any write path failing:

* **Server lists that differ between processes** (a rolling deploy adds or
  removes a memcached server; a server is put back without a flush). Each
  process keeps a ``PoolMembership`` row for its list, renewed every third of
  ``POOL_MEMBERSHIP_TTL`` (``ensure``, before a read or write); it trusts no
  server once two thirds passed without a renewal. A reader reads a key only from a server that
  *every* listed membership routes it to: there every writer bumps its
  version. Other keys are answered by the database, unfilled. A process whose
  list is new bumps the configuration version on every server of every
  listed membership before it writes or reads, so each process reloads the
  memberships (``stale``) on its next round trip. A row is deleted only after
  its list expired and the servers that its removal lets readers trust for
  more keys were outdated.
* **A server process that is not the one the counters were written on** (a
  memcached restart; a Redis failover whose promoted replica missed the last
  increments, a restart from an older RDB file). ``p:srv`` records the
  identity (``Adapter.identity``) the counters belong to; when the server
  answering has another, its counters are outdated and the key rewritten.

"Outdated" means: the configuration version and every container generation
of the cache set to a new time-based base on that server (versions.py's
payloads carry the generation they were read under, so none matches again;
index containers and leases ride on the same generations). Checked when a
process starts, after every failure (the outbox's replay calls ``check``
before it cleans a server) and at every renewal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import defaultdict
from datetime import timedelta

from django.db import DatabaseError, IntegrityError, connections, router
from django.db.models import BooleanField, DateTimeField, ExpressionWrapper, Q, Value
from django.db.models.functions import Now

from cachelayer.adapters.base import Adapter
from cachelayer.adapters.routing import RouteMemo
from cachelayer.core import conf, logfields
from cachelayer.core.keys import KeySpace, config_key, server_key
from cachelayer.engine import database, transactions
from cachelayer.exceptions import CacheUnavailable
from cachelayer.models import Container, PoolMembership

logger = logging.getLogger("cachelayer")

_checking: dict[str, threading.Lock] = defaultdict(threading.Lock)


def stale(adapter: Adapter) -> None:
    """Trust no server before the topology was checked again (the configuration version moved)."""
    adapter.health.renew_at = adapter.health.trusted_until = 0.0


def ensure(adapter: Adapter) -> None:
    """Check the topology when it is due, before a read or a write goes out.

    A new list is so announced before the process's first read or write,
    and a process that only writes keeps its membership alive. When the check
    fails (the database is down: nobody commits then), it is retried after
    BREAKER_COOLDOWN, and the servers stay trusted until ``trusted_until``.
    """
    if adapter.topology_due():
        if _in_declared_commit():
            _check_here(adapter)
        else:
            database.in_own_connection(check, adapter)
        if adapter.topology_due():
            adapter.health.renew_at = time.monotonic() + conf.get("BREAKER_COOLDOWN")


def _in_declared_commit() -> bool:
    """Return whether a test declared its open transaction committed (cachelayer.testing):
    then another connection would wait for that transaction's locks."""
    alias = router.db_for_write(PoolMembership)
    return alias in transactions.committed_depths and connections[alias].in_atomic_block


def _check_here(adapter: Adapter) -> None:
    try:
        check(adapter)
    except DatabaseError as exc:
        logger.error(
            "cachelayer: could not check the topology of cache %s: %s",
            adapter.alias,
            exc,
            extra=logfields.fields(cache=adapter.alias),
        )


def check(adapter: Adapter) -> list[str]:
    """Renew this process's membership, load the others', and verify each
    server's identity; return the servers that could not be verified."""
    if adapter.process_local:
        adapter.health.renew_at = adapter.health.trusted_until = float("inf")
        return []
    started = time.monotonic()
    with _checking[adapter.alias]:
        adapter.others = [RouteMemo(servers) for servers in _renew(adapter)]
        unverified = [server for server in adapter.servers if not _verify(adapter, server)]
        ttl = conf.get("POOL_MEMBERSHIP_TTL")
        # Renewed every third of the TTL; trusted for two thirds, so that others
        # can never retire the row of a process that still trusts its servers.
        adapter.health.renew_at, adapter.health.trusted_until = started + ttl / 3, started + ttl * 2 / 3
    return unverified


def fingerprint(servers: list[str]) -> str:
    return hashlib.sha256(json.dumps(sorted(servers)).encode()).hexdigest()


def _renew(adapter: Adapter) -> list[list[str]]:
    """Renew (or announce) our row; retire expired ones; return the other lists still listed."""
    mine = sorted(adapter.servers)
    table = PoolMembership.objects.filter(cache_alias=adapter.alias)
    if not table.filter(fingerprint=fingerprint(mine)).update(last_seen=Now(), servers=mine):
        _announce(adapter, mine)
    expired = ExpressionWrapper(
        Now() - Value(timedelta(seconds=conf.get("POOL_MEMBERSHIP_TTL"))), output_field=DateTimeField()
    )
    rows = list(
        table.exclude(fingerprint=fingerprint(mine)).annotate(
            expired=ExpressionWrapper(Q(last_seen__lt=expired), output_field=BooleanField())
        )
    )
    listed = [mine] + [row.servers for row in rows]
    for row in rows:
        if row.expired:
            remaining = [servers for servers in listed if servers is not row.servers]
            gaining = _gaining(row.servers, remaining)
            logger.warning(
                "cachelayer: cache %s: retiring server list %s, outdating %s",
                adapter.alias,
                row.servers,
                gaining,
                extra=logfields.fields(cache=adapter.alias),
            )
            if _outdate_everywhere(adapter, gaining):
                table.filter(pk=row.pk, last_seen__lt=expired).delete()  # unless it was renewed meanwhile
                listed = remaining
    return listed[1:]


def _announce(adapter: Adapter, mine: list[str]) -> None:
    """Insert our row, then make every listed process reload the memberships
    (it reads the configuration version in every round trip). With no row at
    all there is no telling who wrote what before: outdate our servers.

    The others are read after the insert commits: of two lists announced at
    once, the second to read sees the first, and bumps its servers.
    """
    try:
        with database.guarded(router.db_for_write(PoolMembership)):  # a savepoint inside atomic
            PoolMembership.objects.create(
                cache_alias=adapter.alias, fingerprint=fingerprint(mine), servers=mine, last_seen=Now()
            )
    except IntegrityError:
        pass  # a process with the same list announces it at the same time: both do (idempotent)
    table = PoolMembership.objects.filter(cache_alias=adapter.alias).exclude(fingerprint=fingerprint(mine))
    listed = list(table.values_list("servers", flat=True))
    if listed:
        logger.warning(
            "cachelayer: cache %s: server list %s announced beside %s",
            adapter.alias,
            mine,
            listed,
            extra=logfields.fields(cache=adapter.alias),
        )
    key = config_key(conf.get("KEY_PREFIX"))
    for servers in listed:
        other = _client_for(adapter, [server for server in servers if server not in adapter.servers])
        if other is not None:
            try:
                other.incr_everywhere(key)
            finally:
                other.close()
    adapter.incr_everywhere(key)
    if not listed:
        _outdate_everywhere(adapter, mine)


def _gaining(retired: list[str], remaining: list[list[str]]) -> list[str]:
    """Return the servers on which readers trust more keys once ``retired`` is no longer listed.

    A server S trusts a key when every list routes the key to S. S gains
    nothing when some remaining list L holds S with S in ``retired`` and
    ``retired`` a subset of L: a key L routes to S, ``retired`` routed to S too
    (rendezvous hashing over a subset that holds the winner keeps it).
    """
    servers = sorted({server for servers in remaining for server in servers})
    return [
        server
        for server in servers
        if not any(server in servers and server in retired and set(retired) <= set(servers) for servers in remaining)
    ]


def _outdate_everywhere(adapter: Adapter, servers: list[str]) -> bool:
    """Outdate ``servers`` (ours or not); return whether every one of them was reached."""
    own = [server for server in servers if server in adapter.servers]
    foreign = [server for server in servers if server not in adapter.servers]
    reached = all([_outdate(adapter, server) for server in own])  # noqa: C419 (outdate every one)
    other = _client_for(adapter, foreign)
    if other is not None:
        try:
            reached = all([_outdate(other, server) for server in foreign]) and reached  # noqa: C419
        finally:
            other.close()
    return reached


def _client_for(adapter: Adapter, servers: list[str]) -> Adapter | None:
    """Return a client of ``adapter``'s kind over ``servers`` (None: none given, or servers
    of another kind of cache: a deploy that moves the alias from Redis to memcached lists
    both under one name). Those cannot be told, and stay listed: no key is routed to one
    server by both lists, so none is read from the cache while the other list is live."""
    if not servers:
        return None
    try:
        return adapter.for_servers(servers)
    except (ValueError, TypeError) as exc:  # the client cannot parse the address
        logger.warning(
            "cachelayer: cache %s: the listed servers %s are not addresses of its client (%s); "
            "keys are read from the database while that list is live",
            adapter.alias,
            servers,
            exc,
            extra=logfields.fields(cache=adapter.alias),
        )
        return None


def _outdate(adapter: Adapter, server: str) -> bool:
    """Give the configuration version and every generation of the cache a new base on ``server``."""
    prefix = conf.get("KEY_PREFIX")
    mine = Q(cache_alias=adapter.alias)
    if adapter.alias == conf.get("CACHE_ALIAS"):
        mine |= Q(cache_alias="")  # blank: the default cache
    names = Container.objects.filter(mine)
    keys = [config_key(prefix), *(KeySpace(prefix, name).gen for name in names.values_list("name", flat=True))]
    try:
        adapter.reset_counters(server, keys)
    except CacheUnavailable as exc:
        logger.warning(
            "cachelayer: could not outdate %s: %s",
            server,
            exc,
            extra=logfields.fields(cache=adapter.alias, server=server, error=exc),
        )
        return False
    return True


def _verify(adapter: Adapter, server: str) -> bool:
    """Outdate ``server`` when its counters were written under another server process."""
    key = server_key(conf.get("KEY_PREFIX"))
    try:
        identity = adapter.identity(server)
        recorded = adapter.read_on(server, [key]).get(key)
        if isinstance(recorded, bytes):
            recorded = recorded.decode()
        if recorded == identity:
            return True
        if recorded is not None:
            logger.warning(
                "cachelayer: cache server %s is a new process (%s, was %s)",
                server,
                identity,
                recorded,
                extra=logfields.fields(cache=adapter.alias, server=server),
            )
        if not _outdate(adapter, server):
            return False
        adapter.store_on(server, {key: identity})
    except CacheUnavailable:
        return False
    return True
