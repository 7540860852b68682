"""Durable invalidation: what the cache did not take waits in the database.

An invalidation that could not be delivered is written to ``OutboxEntry``
and the servers it was meant for are marked dirty (adapters/health.py), so
no read uses them: ``Adapter.fetch`` reports their routes unreachable. The
read that finds a route unreachable calls ``replay_owed``, which replays
the outbox to the dirty servers that may be probed, oldest first (bumps are
idempotent: a second bump only costs one more miss), and reads again what
is clean now. A hit never comes here. Entries that still fail stay, and so
does their servers' dirty mark. Nothing is dropped: an entry leaves the
table only after it was delivered.

The outbox is bounded and coalesces. There is one row per (cache, server,
counter key) at most: a second write to a key during an outage rewrites
the row (an upsert that gives it a new ``revision``; the replay deletes only
the revisions it delivered). Past ``OUTBOX_LIMIT`` rows of one container,
its generation is bumped instead (one row per server) and its key rows are
deleted: the generation outdates them all. A replay sends each batch of
rows in one round trip per server, and drains the whole table at once.

The replay runs on a connection of its own (a short-lived thread), so that
it commits even when the read that triggers it is inside ``atomic``.

Every database the router lets the outbox table into is read, one at a
time: one without the table (another application's database, with no router
to say so) holds no entry and is skipped, and one that fails keeps every
server dirty without stopping the others' replay. An entry whose write went
to a database without the table is kept in the outbox's own database.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import defaultdict
from collections.abc import Collection
from typing import Any

from django.db import DatabaseError, connections, router

from cachelayer.adapters.base import Adapter, Route
from cachelayer.core import conf, logfields
from cachelayer.engine import database, topology
from cachelayer.exceptions import CacheUnavailable
from cachelayer.models import OutboxEntry

logger = logging.getLogger("cachelayer")

BATCH = 1000  # rows read and delivered together (one round trip per server)
MAX_BATCHES = 1000  # per replay and database: more than the limit allows for any likely number of containers
UNIQUE = ["cache_alias", "server", "key"]

_replaying: dict[str, threading.Lock] = defaultdict(threading.Lock)


def record(
    using: str | None,
    adapter: Adapter,
    container: str,
    *,
    groups=None,
    shared=(),
    servers=(),
    generation: str | None = None,
) -> None:
    """Keep undelivered invalidations, then mark their servers dirty.

    ``groups`` is ``{route: (counter keys, payload keys)}``; ``shared`` keys
    are bumped on ``servers`` (empty = all) at replay. ``generation`` is the
    container's generation key, bumped instead of keeping more than
    OUTBOX_LIMIT rows of it. The dirty mark comes after the rows are
    written, so a concurrent replay that cleans a server has either seen
    them or sees the server's epoch move.
    """
    groups = groups or {}
    entries = [
        _entry(adapter, container, adapter.server_of(route), route, counters, payloads)
        for route, (counters, payloads) in groups.items()
    ]
    entries += [
        _entry(adapter, container, server, None, [key], []) for key in shared for server in servers or adapter.servers
    ]
    database = using if using and _holds_outbox(using) else router.db_for_write(OutboxEntry)
    try:
        _keep(database, adapter, container, entries, generation)
    except DatabaseError as exc:
        logger.error(
            "cachelayer: could not keep an undelivered invalidation of %s (%s) in the outbox: %s",
            container or "the configuration",
            list(groups) or list(shared),
            exc,
            extra=logfields.fields(container=container or None, cache=adapter.alias, keys=list(groups) or list(shared)),
        )
    dirty = {entry.server for entry in entries}
    for server in dirty:
        adapter.health.mark_dirty(server)


def _entry(adapter, container, server, route, counters, payloads) -> OutboxEntry:
    return OutboxEntry(
        cache_alias=adapter.alias,
        server=server,
        container=container,
        key=(list(counters) or list(payloads))[0],
        route=route,
        counters=list(counters),
        payloads=list(payloads),
        revision=random.getrandbits(62),
    )


def _keep(database: str, adapter: Adapter, container: str, entries: list, generation: str | None) -> None:
    """Upsert ``entries``; past the container's bound, its generation replaces its key rows."""
    keyed = OutboxEntry.objects.using(database).filter(
        cache_alias=adapter.alias, container=container, route__isnull=False
    )
    keys = [entry for entry in entries if entry.route is not None]
    if generation and keys and keyed.count() + len(keys) > conf.get("OUTBOX_LIMIT"):
        servers: Collection[str]
        servers = set(keyed.values_list("server", flat=True).distinct()) | {entry.server for entry in keys}
        servers = adapter.servers if "" in servers else sorted(servers)  # "": a row of the old shape
        # The bumps first: at every moment some row owes each server every key.
        _upsert(database, [_entry(adapter, container, server, None, [generation], []) for server in servers])
        keyed.delete()
        entries = [entry for entry in entries if entry.route is None]
    _upsert(database, entries)


def _upsert(database: str, entries: list) -> None:
    """Insert ``entries``; one that exists (same cache, server and key) gets the new revision."""
    if not entries:
        return
    targets: dict[str, Any] = (
        {"unique_fields": UNIQUE} if connections[database].features.supports_update_conflicts_with_target else {}
    )
    unique = {(entry.cache_alias, entry.server, entry.key): entry for entry in entries}
    OutboxEntry.objects.using(database).bulk_create(
        unique.values(), update_conflicts=True, update_fields=["revision", "route", "counters", "payloads"], **targets
    )


def replay_owed(adapter: Adapter) -> bool:
    """Replay the outbox to the dirty servers that may be probed now; return
    whether one of them is clean after it (so a read may try it again)."""
    probing = [server for server in adapter.dirty_servers() if adapter.may_call(server)]
    lock = _replaying[adapter.alias]
    if not probing or not lock.acquire(blocking=False):
        return False  # down, or another thread replays: reads of these servers go to the database
    try:
        database.in_own_connection(_replay, adapter, probing)
    finally:
        lock.release()
    return any(server not in adapter.health.dirty for server in probing)


def replay_in_this_connection(adapter: Adapter) -> None:
    """Replay the outbox to every dirty server of ``adapter`` on this thread's own
    connections: inside a test's transaction, which nothing commits and whose
    locks another connection would wait for (cachelayer.testing)."""
    _replay(adapter, adapter.dirty_servers())


def _databases() -> list[str]:
    """Return the aliases that may hold entries: the router lets the table in, not a test mirror."""
    return [
        alias
        for alias in connections
        if not connections.settings[alias].get("TEST", {}).get("MIRROR")
        and router.allow_migrate_model(alias, OutboxEntry)
    ]


def _holds_outbox(using: str) -> bool:
    """Return whether database ``using`` has the outbox table (one query: off the read path)."""
    connection = connections[using]
    with connection.cursor() as cursor:
        return OutboxEntry._meta.db_table in connection.introspection.table_names(cursor)


def _replay(adapter: Adapter, probing: list[str]) -> None:
    epochs = {server: adapter.health.epoch(server) for server in probing}
    owed: set[str] = set(topology.check(adapter))  # servers whose contents cannot be vouched for yet
    replayed = 0
    for using in _databases():
        try:
            replayed += _replay_database(adapter, using, owed)
        except DatabaseError as exc:
            logger.error(
                "cachelayer: could not replay the outbox in database %s: %s",
                using,
                exc,
                extra=logfields.fields(cache=adapter.alias),
            )
            owed.update(adapter.servers)  # its entries may be owed to any server: clean none
    for server in probing:
        if server not in owed:
            try:
                adapter.ping(server)  # the probe, when no entry went to this server
            except CacheUnavailable:
                continue
            adapter.health.mark_clean(server, epochs[server])
    if replayed:
        logger.warning(
            "cachelayer: replayed %d outbox entries to cache %s",
            replayed,
            adapter.alias,
            extra=logfields.fields(cache=adapter.alias),
        )


def _replay_database(adapter: Adapter, using: str, owed: set[str]) -> int:
    """Deliver the entries database ``using`` holds for ``adapter``, oldest
    first, batch after batch; return how many left it."""
    if not _holds_outbox(using):
        return 0
    replayed = 0
    table = OutboxEntry.objects.using(using).filter(cache_alias=adapter.alias)
    for _ in range(MAX_BATCHES):
        entries = list(table.order_by("id")[:BATCH])
        delivered = _send_batch(adapter, entries, owed)
        if delivered:  # no write when nothing left: on SQLite it would wait for any open write transaction
            table.filter(pk__in=[e.pk for e in delivered], revision__in=[e.revision for e in delivered]).delete()
        replayed += len(delivered)
        if len(delivered) < len(entries) or len(entries) < BATCH:
            return replayed
    owed.update(adapter.servers)  # more than MAX_BATCHES batches: clean nothing yet
    return replayed


def _send_batch(adapter: Adapter, entries: list, owed: set[str]) -> list:
    """Deliver a batch of entries (one round trip per server); return those
    delivered. The servers of the others join ``owed``."""
    groups: defaultdict[Route, tuple[list[str], list[str]]]
    groups, by_route, shared = defaultdict(lambda: ([], [])), defaultdict(list), defaultdict(list)
    for entry in entries:
        if entry.route is None:
            shared[entry.key].append(entry)
        else:
            route = entry.route if not isinstance(entry.route, list) else tuple(entry.route)
            groups[route][0].extend(entry.counters)
            groups[route][1].extend(entry.payloads)
            by_route[route].append(entry)
    failed_routes, _ = adapter.invalidate(groups) if groups else ([], {})
    failed = [entry for route in failed_routes for entry in by_route[route]]
    owed.update(adapter.server_of(route) for route in failed_routes)
    for key, rows in shared.items():
        # A server since removed from the cache's LOCATION is read by no one: nothing is owed to it.
        servers = sorted({row.server for row in rows if row.server in adapter.servers})
        everywhere = any(not row.server for row in rows)  # a row of the old shape: every server
        missed = set(adapter.incr_everywhere(key, None if everywhere else servers)) if everywhere or servers else set()
        owed.update(missed)
        failed.extend(row for row in rows if row.server in missed or (not row.server and missed))
    failed_ids = {id(entry) for entry in failed}
    return [entry for entry in entries if id(entry) not in failed_ids]


def backlog() -> dict[str, int]:
    """Return the number of waiting entries per container ("" = configuration)."""
    from django.db.models import Count

    counts: dict[str, int] = defaultdict(int)
    for using in filter(_holds_outbox, _databases()):
        for row in OutboxEntry.objects.using(using).values("container").annotate(n=Count("id")):
            counts[row["container"]] += row["n"]
    return dict(counts)
