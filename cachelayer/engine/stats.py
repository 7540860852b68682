"""Per-container counters: counted in process, shared through the cache.

``incr`` only adds to an in-process Counter (no round trip on the hot path).
At most every ``STATS_INTERVAL`` seconds (and at exit) a process adds what it
counted since its last publish to shared counters in the container's cache,
so ``shared()`` sees the sum over every process that served the container.
"""

from __future__ import annotations

import atexit
import datetime
import json
import logging
import threading
import time
from collections import Counter, defaultdict
from typing import Any

from cachelayer.adapters.base import Adapter
from cachelayer.adapters.registry import get_adapter
from cachelayer.core import conf, logfields
from cachelayer.core.keys import KeySpace
from cachelayer.engine import outbox, topology
from cachelayer.engine.registry import registry
from cachelayer.exceptions import CacheUnavailable

logger = logging.getLogger("cachelayer")

COUNTERS = ("hits", "misses", "fills", "refills", "invalidations", "lease_waits", "errors", "too_large", "rejected")
LAST_FLUSH = "last_flush"  # unix time of the last flush (see flushing.py)
LAST_INSPECTION = "last_inspection"  # the last inspection's summary, as JSON (see tasks/inspection.py)
FRESHNESS = "freshness"  # the freshness monitor's rolling shares, as JSON (see tasks/freshness.py)

_counts: defaultdict[str, Counter] = defaultdict(Counter)  # since start (or reset)
_published: defaultdict[str, Counter] = defaultdict(Counter)  # part of _counts already shared
_publish_lock = threading.Lock()
_next_publish = 0.0


def incr(container: str, counter: str, amount: int = 1) -> None:
    if conf.get("STATS"):
        _counts[container][counter] += amount
        if time.monotonic() >= _next_publish:
            publish()


def tally(container: str, counter: str, amount: int = 1) -> None:
    """Count in process only: the next ``incr`` that is due (a miss, a write) or the
    exit publishes it. The near-cache's hits never wait for a round trip."""
    if conf.get("STATS"):
        _counts[container][counter] += amount


def publish_due() -> bool:
    """Return whether the counts are due to be published (a caller that only tallies
    runs ``publish`` where it may wait for the caches, such as a thread)."""
    return bool(_counts) and time.monotonic() >= _next_publish


def snapshot() -> dict[str, dict[str, int]]:
    """Return this process's counters by container."""
    return {name: {c: counts[c] for c in COUNTERS} for name, counts in _counts.items()}


def reset() -> None:
    """Forget this process's counters (the shared ones are left alone)."""
    _counts.clear()
    _published.clear()


def _target(container: str) -> tuple[Adapter, KeySpace]:
    """Return where a container's shared statistics live: its own cache."""
    definition = registry.find(container)
    alias = definition.cache_alias if definition else conf.get("CACHE_ALIAS")
    return get_adapter(alias), KeySpace(conf.get("KEY_PREFIX"), container)


def publish() -> None:
    """Add what this process counted since its last publish to the shared counters.

    A cache that does not answer keeps the counts for the next publish.
    """
    global _next_publish
    if not _counts or not _publish_lock.acquire(blocking=False):
        return  # nothing counted, or another thread is publishing
    try:
        _next_publish = time.monotonic() + conf.get("STATS_INTERVAL")
        for container, counts in list(_counts.items()):
            delta = {c: counts[c] - _published[container][c] for c in COUNTERS}
            delta = {c: n for c, n in delta.items() if n}
            if not delta:
                continue
            try:
                adapter, keys = _target(container)
                adapter.add_counts({keys.stat(c): n for c, n in delta.items()})
            except CacheUnavailable as exc:
                logger.debug(
                    "cachelayer: could not publish statistics of %s: %s",
                    container,
                    exc,
                    extra=logfields.fields(container=container, error=exc),
                )
                continue
            _published[container].update(delta)
    finally:
        _publish_lock.release()


def _note(container: str, name: str, value) -> None:
    """Store one statistic of ``container`` (no expiry) where every process sees it."""
    adapter, keys = _target(container)
    adapter.store({None: {keys.stat(name): value}}, 0)


def note_flush(container: str) -> None:
    """Record the time of a flush of ``container``."""
    _note(container, LAST_FLUSH, int(time.time()))


def note_inspection(container: str, summary: dict) -> None:
    """Record the summary of an inspection of ``container`` (it must hold a unix time ``finished``)."""
    _note(container, LAST_INSPECTION, json.dumps(summary, sort_keys=True))


def note_freshness(container: str, summary: dict) -> None:
    """Record the freshness monitor's window of ``container`` (it must hold a unix time ``updated``)."""
    _note(container, FRESHNESS, json.dumps(summary, sort_keys=True))


def freshness(containers) -> dict[str, dict | None]:
    """Return the freshness monitor's last window of each container (None: none published, or unreadable)."""
    by_adapter: dict[Adapter, dict[str, str]] = {}
    for container in containers:
        adapter, keys = _target(container)
        by_adapter.setdefault(adapter, {})[container] = keys.stat(FRESHNESS)
    result: dict[str, dict | None] = {}
    for adapter, wanted in by_adapter.items():  # one round trip per cache, not per container
        topology.ensure(adapter)  # as a read does: a server whose counters cannot be vouched for is not read
        outbox.replay_owed(adapter)
        found = adapter.fetch({None: list(wanted.values())}).answered() or {}
        result.update({container: _summary(found.get(key)) for container, key in wanted.items()})
    return result


def _summary(stored) -> dict | None:
    """Decode a stored summary (inspection, freshness); one that cannot be read counts as none."""
    try:
        return json.loads(stored) if stored is not None else None
    except ValueError:
        return None


def shared(containers) -> dict[str, dict]:
    """Return every process's counters, plus hit ratio, last flush, last inspection and freshness, by container.

    Publishes this process's counts first. A cache that does not answer
    gives ``{"error": message}`` for its containers.
    """
    publish()
    result: dict[str, dict] = {}
    for container in containers:
        try:
            adapter, keys = _target(container)
            names = [*COUNTERS, LAST_FLUSH]
            outbox.replay_owed(adapter)  # a server the outbox owes is not read (cheap when none)
            found = adapter.fetch({None: [keys.stat(n) for n in (*names, LAST_INSPECTION, FRESHNESS)]}).answered()
            if found is None:
                raise CacheUnavailable(f"cache {adapter.alias} cannot be read now", cache=adapter.alias)
        except CacheUnavailable as exc:
            result[container] = {"error": str(exc)}
            continue
        values: dict[str, Any] = {n: int(found.get(keys.stat(n), 0)) for n in names}
        looked_up = values["hits"] + values["misses"]
        values["hit_ratio"] = values["hits"] / looked_up if looked_up else None
        values[LAST_FLUSH] = values[LAST_FLUSH] or None
        values[LAST_INSPECTION] = _summary(found.get(keys.stat(LAST_INSPECTION)))
        values[FRESHNESS] = _summary(found.get(keys.stat(FRESHNESS)))
        result[container] = values
    return result


def display(name: str, value) -> str:
    """Return one statistic as the admin and cache_stats show it."""
    if value is None:
        return "-"
    if name == "hit_ratio":
        return f"{value:.1%}"
    if name == LAST_FLUSH:
        return _utc(value)
    if name == LAST_INSPECTION:
        return (
            f"{_utc(value['finished'])}: {value['checked']} checked ({value['scope']}), "
            f"{value['stale']} stale, {value['missing_but_present']} missing-but-present, {value['nines']} consistent"
        )
    if name == FRESHNESS:
        shares = ", ".join(f"{d['nines']} within {d['delay']:g} s" for d in value["delays"] if d["checked"])
        return f"{_utc(value['updated'])}: {shares or 'no write sampled yet'}"
    return str(value)


def _utc(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


atexit.register(publish)
