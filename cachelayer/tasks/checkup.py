"""One health report for monitoring (``manage.py cache_health``).

``healthy``: the database and every cache server answer, no invalidation is
owed and every follower keeps up. ``degraded``: cachelayer still serves fresh
rows but something needs a look (a server of a pool is down, so its share of
the reads goes to the database; invalidations wait in the outbox; a follower
is stale or down, so writers outside Django are not seen; the freshness
monitor measured a share of consistent checks under MONITOR_TARGETS). ``down``: the
database cannot be reached, or no server of a cache that containers use
answers (every read of theirs goes to the database).
"""

from __future__ import annotations

from django.db import DatabaseError, router
from django.db.models import Count

from cachelayer.adapters.registry import get_adapter
from cachelayer.core import conf
from cachelayer.engine import database, stats
from cachelayer.engine.registry import registry
from cachelayer.exceptions import CacheUnavailable, DatabaseUnavailable
from cachelayer.models import ConfigOption, OutboxEntry
from cachelayer.tasks.follow import progress
from cachelayer.tasks.freshness import below_target

HEALTHY, DEGRADED, DOWN = "healthy", "degraded", "down"
EXIT_CODES = {HEALTHY: 0, DEGRADED: 1, DOWN: 2}


def report() -> dict:
    """Return ``{"status", "problems", "database", "caches", "outbox", "followers", "freshness"}``."""
    problems: list[tuple[str, str]] = []  # (status, what is wrong)
    alias = router.db_for_read(ConfigOption)
    document: dict = {"database": {"alias": alias, "reachable": not database.unreachable(alias)}}
    if not document["database"]["reachable"]:
        problems.append((DOWN, f"database {alias!r} cannot be reached"))
        return _finish(document, problems)
    try:
        registry.load()
    except DatabaseUnavailable as exc:
        problems.append((DOWN, str(exc)))
        return _finish(document, problems)
    aliases = registry.cache_aliases(enabled=True)
    document["caches"] = {name: _cache(name, problems) for name in aliases}
    document["outbox"] = _outbox(problems)
    document["followers"] = _followers(problems)
    document["freshness"] = _freshness(problems)
    return _finish(document, problems)


def _cache(alias: str, problems: list) -> dict:
    adapter = get_adapter(alias)
    servers = {}
    for server in adapter.servers:
        try:
            adapter.ping(server)
            reachable = True
        except CacheUnavailable:
            reachable = False
        servers[server] = {
            "reachable": reachable,
            "breaker": "closed" if adapter.breakers[server].allow() else "open",
            "owed_invalidations": server in adapter.health.dirty,
        }
    down = [server for server, state in servers.items() if not state["reachable"]]
    if down and len(down) == len(servers):
        problems.append(
            (DOWN, f"cache {alias!r}: no server answers ({', '.join(down)}); the database serves every read")
        )
    elif down:
        problems.append(
            (DEGRADED, f"cache {alias!r}: {', '.join(down)} does not answer; its share of reads goes to the database")
        )
    return {"servers": servers}


def _outbox(problems: list) -> dict:
    using = router.db_for_read(OutboxEntry)
    try:
        with database.guarded(using):
            rows = OutboxEntry.objects.using(using).values("cache_alias").annotate(entries=Count("pk"))
            by_cache = {row["cache_alias"]: row["entries"] for row in rows}
    except DatabaseError as exc:
        problems.append((DEGRADED, f"the outbox cannot be read: {exc}"))
        return {"entries": None, "by_cache": {}}
    total = sum(by_cache.values())
    if total:
        problems.append((DEGRADED, f"{total} invalidation(s) wait in the outbox for a cache server to answer"))
    return {"entries": total, "by_cache": by_cache}


def _followers(problems: list) -> list[dict]:
    rows = progress.status()
    if rows:  # a follower ran: its binlog client (the binlog extra) is installed
        from cachelayer.tasks.follow.health import UNHEALTHY
    for row in rows:
        if row["state"] in UNHEALTHY:
            problems.append((DEGRADED, f"follower of {row['database']} is {row['state']}: {progress.describe(row)}"))
    return rows


def _freshness(problems: list) -> dict:
    """Return the freshness monitor's shares per container and delay (only those it published)."""
    found = stats.freshness([d.name for d in registry.definitions(enabled=True)])
    targets = conf.get("MONITOR_TARGETS")
    for name, summary in found.items():
        for wrong in below_target(summary, targets) if summary else ():
            problems.append((DEGRADED, f"container {name}: {wrong} (cache_monitor)"))
    return {name: summary["delays"] for name, summary in found.items() if summary}


def _finish(document: dict, problems: list) -> dict:
    states = {status for status, _ in problems}
    document["status"] = DOWN if DOWN in states else DEGRADED if states else HEALTHY
    document["problems"] = [message for _, message in problems]
    return document
