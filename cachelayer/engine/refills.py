"""Refill after write: the writer stores the rows it just outdated, read back
from the database, so the next read of a hot row is a hit.

Opt-in per container, through its cache policy (``refill_after_write``; the
InnoDB memcached plugin's ``caching`` set and cacheops' ``cache_on_save`` are
the models). A refill is a read path fill (reads.py, loaders.py) run by the
writer right after its invalidation was delivered: it fetches the generation
and version (now the bumped ones), reads the rows from the database the fill
would read (``db_for_write``), and stores them under the versions it fetched
first. So it cannot store an old row under a current version: a row read
before another writer's commit is stored under a version that writer's bump
(after its commit, so after the fetch) has already outdated. The instance in
memory is never stored: defaults, expressions and triggers may have made the
row differ from it.

One write costs one refill, whatever the number of containers: the versions of
every refilled container of a cache in one multi-get, the rows of one model in
one query (each container keeps the rows that hold its keys), the payloads of
a cache in one multi-set; every fetch before the query, the query before any store.

A refill never fails the write (its invalidation is delivered already): an
error is logged and counted as ``errors`` of every container it was refilling.
A delivery that outdated more than ``MAX_KEYS`` keys of one container (a bulk
write) refills none of them: its readers fill what they read.
"""

from __future__ import annotations

import logging

from cachelayer.core.policies import Policy
from cachelayer.engine import loaders, reads, stats, versions
from cachelayer.engine.definitions import Definition
from cachelayer.exceptions import CacheUnavailable, OperationDisabled

logger = logging.getLogger("cachelayer")

MAX_KEYS = 100  # per container and delivery: past it the writer would read what it bulk-wrote


def refill(delivered: dict[Definition, list[str]]) -> None:
    """Store the current rows of the keys just outdated, in the containers whose policy asks; never raises."""
    wanted = {d: keys for d, keys in delivered.items() if d.refill and keys and len(keys) <= MAX_KEYS}
    try:
        wanted = {d: keys for d, keys in wanted.items() if _refillable(d)}
        for definition, refilled in (_refill(wanted) if wanted else {}).items():
            if refilled:
                stats.incr(definition.name, "refills", refilled)
    except versions.Restart:
        pass  # the configuration changed since the delivery: the next read fills under the new one
    except CacheUnavailable:
        _count_errors(wanted)  # the breaker logged it
    except Exception:
        _count_errors(wanted)
        logger.exception(
            "cachelayer: refilling %s after a write failed; their next read fills", ", ".join(d.name for d in wanted)
        )


def _refillable(definition: Definition) -> bool:
    """Return True when a read of the container would read through the cache and fill."""
    if not definition.enabled:
        return False
    try:
        policy = definition.policy("get")
    except OperationDisabled:
        return False
    return policy == Policy.CACHING and reads.read_modes(definition, policy)["use_cache"]


def _refill(wanted: dict[Definition, list[str]]) -> dict[Definition, int]:
    """Fill the keys the cache misses, as a read's fill does; return how many each container stored."""
    states: dict[Definition, list] = {}
    for same_cache in _grouped(wanted, lambda d: d.cache_alias):
        for definition, read in versions.fetch_together(same_cache).items():
            # keys it could not answer for: no fill, as on a read
            missed = [state for state in read.states.values() if state.row is versions.MISSING]
            if to_fill := reads.fillable(definition, definition.db_alias(), missed):
                states[definition] = to_fill
    filled: dict[Definition, dict] = {}
    too_large: dict[Definition, list[str]] = {}
    for same_rows in _grouped(states, lambda d: (d.model, d.db_alias())):
        using = next(iter(same_rows)).db_alias()
        entries = loaders.query_together({d: [s.key for s in to_fill] for d, to_fill in same_rows.items()}, using)
        for definition, to_fill in same_rows.items():
            filled[definition], too_large[definition] = loaders.of(definition).payloads(
                definition, to_fill, entries[definition]
            )
    versions.store(filled)
    return {definition: len(to_fill) - len(too_large[definition]) for definition, to_fill in states.items()}


def _grouped(wanted: dict, by) -> list[dict]:
    """Split ``{definition: value}`` into the dicts whose definitions ``by`` maps alike."""
    groups: dict = {}
    for definition, value in wanted.items():
        groups.setdefault(by(definition), {})[definition] = value
    return list(groups.values())


def _count_errors(wanted: dict) -> None:
    for definition in wanted:
        stats.incr(definition.name, "errors")
