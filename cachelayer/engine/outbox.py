"""Durable invalidation: what the cache did not take waits in the database.

An invalidation that could not be delivered is written to ``OutboxEntry``
and the servers it was meant for are marked dirty (adapters/health.py), so
no read uses them: ``Adapter.fetch`` reports their routes unreachable. The
read that finds a route unreachable calls ``replay_owed``, which replays
the outbox to the dirty servers that may be probed, oldest first (bumps are
idempotent: a second bump only costs one more miss), and reads again what
is clean now. A hit never comes here. Entries
that still fail stay, and so does their servers' dirty mark. Nothing is
dropped: an entry leaves the table only after every key of it was delivered.

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
import threading
from collections import defaultdict

from django.db import DatabaseError, connections, router

from cachelayer.adapters import Adapter
from cachelayer.exceptions import CacheUnavailable
from cachelayer.models import OutboxEntry

logger = logging.getLogger("cachelayer")

BATCH = 1000  # entries delivered per replay; the rest waits for the next read

_replaying: dict[str, threading.Lock] = defaultdict(threading.Lock)


def record(using: str | None, adapter: Adapter, container: str, *, groups=None, shared=(), servers=()) -> None:
    """Keep undelivered invalidations, then mark their servers dirty.

    ``groups`` is ``{route: (counter keys, payload keys)}``; ``shared`` keys
    are bumped on ``servers`` (empty = all) at replay. The dirty mark comes
    after the row is written, so a concurrent replay that cleans a server
    has either seen the row or sees the server's epoch move.
    """
    groups = groups or {}
    entry = OutboxEntry(
        cache_alias=adapter.alias,
        container=container,
        groups=[[route, list(counters), list(payloads)] for route, (counters, payloads) in groups.items()],
        shared=list(shared),
        servers=list(servers),
    )
    try:
        entry.save(using=using if using and _holds_outbox(using) else router.db_for_write(OutboxEntry))
    except DatabaseError as exc:
        logger.error(
            "cachelayer: could not keep an undelivered invalidation of %s (%s) in the outbox: %s",
            container or "the configuration", list(groups) or list(shared), exc,
        )
    dirty = {adapter.server_of(route) for route in groups} | set(servers or (adapter.servers if shared else ()))
    for server in dirty:
        adapter.health.mark_dirty(server)


def replay_owed(adapter: Adapter) -> bool:
    """Replay the outbox to the dirty servers that may be probed now; return
    whether one of them is clean after it (so a read may try it again)."""
    probing = [server for server in adapter.dirty_servers() if adapter.may_call(server)]
    lock = _replaying[adapter.alias]
    if not probing or not lock.acquire(blocking=False):
        return False  # down, or another thread replays: reads of these servers go to the database
    try:
        _in_own_connection(_replay, adapter, probing)
    finally:
        lock.release()
    return any(server not in adapter.health.dirty for server in probing)


def _in_own_connection(function, *args) -> None:
    def run():
        try:
            function(*args)
        except DatabaseError as exc:
            logger.error("cachelayer: could not read the outbox: %s", exc)
        finally:
            connections.close_all()  # this thread's connections only

    worker = threading.Thread(target=run, name="cachelayer-outbox-replay", daemon=True)
    worker.start()
    worker.join()


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
    owed: set[str] = set()
    replayed = 0
    for using in _databases():
        try:
            replayed += _replay_database(adapter, using, owed)
        except DatabaseError as exc:
            logger.error("cachelayer: could not replay the outbox in database %s: %s", using, exc)
            owed.update(adapter.servers)  # its entries may be owed to any server: clean none
    for server in probing:
        if server not in owed:
            try:
                adapter.ping(server)  # the probe, when no entry went to this server
            except CacheUnavailable:
                continue
            adapter.health.mark_clean(server, epochs[server])
    if replayed:
        logger.warning("cachelayer: replayed %d outbox entries to cache %s", replayed, adapter.alias)


def _replay_database(adapter: Adapter, using: str, owed: set[str]) -> int:
    """Deliver the oldest entries database ``using`` holds for ``adapter``; return how many left it."""
    if not _holds_outbox(using):
        return 0
    entries = list(OutboxEntry.objects.using(using).filter(cache_alias=adapter.alias).order_by("id")[:BATCH])
    if len(entries) == BATCH:
        owed.update(adapter.servers)  # more than one batch: clean nothing yet
    delivered = [entry.pk for entry in entries if not _deliver(adapter, entry, owed)]
    OutboxEntry.objects.using(using).filter(pk__in=delivered).delete()
    return len(delivered)


def _deliver(adapter: Adapter, entry, owed: set[str]) -> bool:
    """Deliver one entry; return True when some of it failed (its servers join ``owed``)."""
    routes, _ = adapter.invalidate({route: (counters, payloads) for route, counters, payloads in entry.groups})
    failed = {adapter.server_of(route) for route in routes}
    # A server since removed from the cache's LOCATION is read by no one: nothing is owed to it.
    servers = [server for server in entry.servers if server in adapter.servers] if entry.servers else None
    for key in entry.shared if servers != [] else ():
        failed.update(adapter.incr_everywhere(key, servers))
    owed.update(failed)
    return bool(failed)


def backlog() -> dict[str, int]:
    """Return the number of waiting entries per container ("" = configuration)."""
    from django.db.models import Count

    counts: dict[str, int] = defaultdict(int)
    for using in filter(_holds_outbox, _databases()):
        for row in OutboxEntry.objects.using(using).values("container").annotate(n=Count("id")):
            counts[row["container"]] += row["n"]
    return dict(counts)
