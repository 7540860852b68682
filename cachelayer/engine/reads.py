"""The read path, whole: policy, read-through, stampede lease, fill rules, counting.

Resolves the container, applies the policy of the operation, reads the
cache (versions.py), sends the misses to the database (one lease holder for
a single key, one query for many), fills what the transaction rules allow,
and starts over once when the read showed that the configuration changed.
A cache that cannot be read is counted, and the database answers.
"""

from __future__ import annotations

import logging

from cachelayer import signals
from cachelayer.core.policies import CACHE_ONLY, CACHING, DB_ONLY
from cachelayer.engine import leases, loaders, stats, transactions, versions
from cachelayer.engine.definitions import Definition
from cachelayer.engine.nearby import Local
from cachelayer.engine.registry import resolve
from cachelayer.engine.versions import ABSENT, MISSING, State
from cachelayer.exceptions import CacheUnavailable, IndexContainer, OperationDisabled

logger = logging.getLogger("cachelayer")

READ_MODES: dict[str, dict[str, bool]] = {  # get policy -> how read() runs
    CACHING: {"use_cache": True, "use_db": True},
    DB_ONLY: {"use_cache": False, "use_db": True},
    CACHE_ONLY: {"use_cache": True, "use_db": False},
}


def read_modes(definition: Definition, policy: str) -> dict[str, bool]:
    """Return how a read under the get ``policy`` runs: from the database alone when
    a key column's collation cannot be folded exactly (collations.py)."""
    modes = READ_MODES[policy]
    if modes["use_cache"] and modes["use_db"] and not definition.codec.exact():
        return READ_MODES[DB_ONLY]
    return modes


def with_definition(target, operation: str, run, *args):
    """Call ``run(definition, policy, *args)``, retrying once after a configuration change.

    Operations that read no payload (db_only, database writes, disabled) check
    the configuration version first: one round trip, off the hit path.
    """
    for attempt in (1, 2):
        definition = resolve(target)
        try:
            policy = definition.policy(operation)
        except OperationDisabled:
            if attempt == 1 and versions.revalidate(definition):
                continue
            raise
        reads_payload = policy == CACHE_ONLY or (operation == "get" and policy == CACHING)
        if not reads_payload and attempt == 1 and versions.revalidate(definition):
            continue
        try:
            return run(definition, policy, *args)
        except versions.Restart:
            if attempt == 2:
                raise


def read_rows(target, operation: str, keys: list) -> tuple[Definition, str, dict]:
    """Return the definition, the database read (``db_alias``: asked once, the
    router decides per read) and ``{key: row}`` for the keys (as given, in any
    form the database accepts: core/codec.py) that exist."""
    return with_definition(target, operation, _read_rows, keys)


def _read_rows(definition: Definition, policy: str, keys: list) -> tuple[Definition, str, dict]:
    if definition.is_index:  # its payloads are lists: a key read would store a row among them
        raise IndexContainer(definition.name, "read it with Model.cached.filter() (or repository(name).get())")
    user_key, using = definition.codec.user_key, definition.db_alias()
    if len(keys) == 1:  # one key (Model.cached.get): no mapping to build and invert
        key = keys[0]
        canonical = user_key(key)  # None: no row can have it
        rows = {} if canonical is None else read(definition, [canonical], using=using, **read_modes(definition, policy))
        return definition, using, ({key: rows[canonical]} if canonical in rows else {})
    by_key = {key: user_key(key) for key in keys}
    user_keys = list(dict.fromkeys(canonical for canonical in by_key.values() if canonical is not None))
    rows = read(definition, user_keys, using=using, **read_modes(definition, policy)) if user_keys else {}
    return definition, using, {key: rows[canonical] for key, canonical in by_key.items() if canonical in rows}


def read(
    definition: Definition,
    user_keys: list[str],
    *,
    use_cache: bool = True,
    use_db: bool = True,
    using: str | None = None,
) -> dict:
    """Return ``{key: row}`` for the keys that exist (read-through).

    ``use_db=False`` is the cache_only policy (a miss is absent; a key the
    cache cannot answer for raises CacheUnavailable: the cache is the store);
    ``use_cache=False`` the db_only policy (the cache is neither read nor filled).
    Otherwise a cache failure is logged and counted, and the database answers.
    The container's loader (loaders.py: rows by key, or an index's lists) reads
    and stores the misses, on ``using`` (default: ``db_alias``).
    """
    using, loader = using or definition.db_alias(), loaders.of(definition)
    if not use_cache:
        return loader.query(definition, user_keys, using)
    try:
        return _read_through(definition, user_keys, using, use_db, loader)
    except CacheUnavailable as exc:
        _log_error(definition, exc)
        if not use_db:
            raise
        return loader.query(definition, user_keys, using)


def _read_through(definition: Definition, user_keys: list[str], using: str, use_db: bool, loader) -> dict:
    found: dict = {}
    misses: list[State] = []
    # Once per read, not per key; before the fetch, which must see what it delivers
    # (a block cachelayer.testing counts as committed delivers on the next look).
    written = transactions.written_test(using, definition.name)
    local = Local.of(definition) if use_db else None  # the request memo, the near-cache (nearby.py)
    if local is not None:
        user_keys = local.serve(user_keys, written, found)
        if not user_keys:
            return found
    states, unreachable = versions.fetch(definition, user_keys)  # unreachable: the database answers, no fill
    if unreachable:
        if not use_db:  # cache_only: counted by read()
            raise definition.adapter.unavailable(None, f"cannot read {unreachable[0]!r} now")
        stats.incr(definition.name, "errors")
    for key, state in states.items():
        if state.row is MISSING or (written is not None and written(key)):
            misses.append(state)
        elif state.row is not ABSENT:
            found[key] = state.row
    count_reads(definition, states, misses)
    if use_db and (misses or unreachable):
        found.update(_read_misses(definition, misses, unreachable, using, loader))
    if local is not None:
        local.keep(states, misses, user_keys, found, written)
    return found


def _read_misses(definition: Definition, misses: list[State], unreachable: list[str], using: str, loader) -> dict:
    """Return the rows of the keys the cache did not answer, filling what the rules allow."""
    if len(misses) == 1 and not unreachable and fillable(definition, using, misses):
        return leases.read_with_lease(definition, misses[0], using)
    rows = loader.query(definition, [s.key for s in misses] + unreachable, using)
    to_fill = fillable(definition, using, misses)
    if to_fill:
        try:
            loader.fill(definition, to_fill, rows)
        except CacheUnavailable:
            stats.incr(definition.name, "errors")  # only the fill is lost; the breaker logged it
    return rows


def count_reads(definition: Definition, states: dict, misses: list, publish: bool = True) -> None:
    """Count hits and misses, and send the per-key signals only when someone listens.

    ``publish=False`` counts in process only (``stats.tally``): an event loop
    must not wait for the publish's round trips (stats.publish_due)."""
    name, model = definition.name, definition.model
    count = stats.incr if publish else stats.tally
    count(name, "hits", len(states) - len(misses))
    if misses:
        count(name, "misses", len(misses))
    if signals.cache_hit.receivers and signals.cache_hit.has_listeners(model):  # the list first: no lock
        missed = {state.key for state in misses}
        for key in states:
            if key not in missed:
                signals.cache_hit.send(sender=model, container=name, key=key)
    if misses and signals.cache_miss.receivers and signals.cache_miss.has_listeners(model):
        for state in misses:
            signals.cache_miss.send(sender=model, container=name, key=state.key)


def fillable(definition: Definition, using: str, states: list[State]) -> list[State]:
    """Return the states a read on ``using`` may fill: none inside ``atomic``
    unless under READ COMMITTED, and never a key the transaction wrote."""
    if not transactions.may_fill(using):
        return []
    written = transactions.written_test(using, definition.name)
    return states if written is None else [state for state in states if not written(state.key)]


def _log_error(definition: Definition, exc: Exception) -> None:
    """Count a failed cache read; the server's breaker logs each burst once."""
    stats.incr(definition.name, "errors")
    logger.debug(
        "cachelayer: cache error on container %s: %s", definition.name, exc, extra=definition.log_fields(error=exc)
    )
