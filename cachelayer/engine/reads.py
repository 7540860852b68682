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
from cachelayer.core.policies import Policy
from cachelayer.engine import leases, stats, transactions, versions
from cachelayer.engine.definitions import Definition
from cachelayer.engine.registry import resolve
from cachelayer.engine.versions import ABSENT, MISSING, State
from cachelayer.exceptions import CacheUnavailable, IndexContainer, OperationDisabled

logger = logging.getLogger("cachelayer")

READ_MODES: dict[str, dict[str, bool]] = {  # get policy -> how read() runs
    Policy.CACHING: {"use_cache": True, "use_db": True},
    Policy.DB_ONLY: {"use_cache": False, "use_db": True},
    Policy.CACHE_ONLY: {"use_cache": True, "use_db": False},
}


def with_definition(target, operation: str, run):
    """Call ``run(definition, policy)``, retrying once after a configuration change.

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
        reads_payload = policy == Policy.CACHE_ONLY or (operation == "get" and policy == Policy.CACHING)
        if not reads_payload and attempt == 1 and versions.revalidate(definition):
            continue
        try:
            return run(definition, policy)
        except versions.Restart:
            if attempt == 2:
                raise


def read_rows(target, operation: str, keys) -> tuple[Definition, dict]:
    """Return the definition and ``{key: row}`` for the keys (as given) that exist."""

    def run(definition, policy):
        if definition.is_index:  # its payloads are lists: a key read would store a row among them
            raise IndexContainer(definition.name, "read it with Model.cached.filter() (or repository(name).get())")
        user_keys = {key: definition.codec.user_key(key) for key in keys}
        rows = read(definition, list(user_keys.values()), **READ_MODES[policy])
        return definition, {key: rows[user_key] for key, user_key in user_keys.items() if user_key in rows}

    return with_definition(target, operation, run)


def read(
    definition: Definition, user_keys: list[str], *, use_cache: bool = True, use_db: bool = True, query=None, fill=None
) -> dict:
    """Return ``{key: row}`` for the keys that exist (read-through).

    ``use_db=False`` is the cache_only policy (a miss is absent; a key the
    cache cannot answer for raises CacheUnavailable: the cache is the store);
    ``use_cache=False`` the db_only policy (the cache is neither read nor filled).
    Otherwise a cache failure is logged and counted, and the database answers.
    ``query(definition, keys, using)`` and ``fill(definition, states, rows)``
    read and store the misses: by default rows by key (versions.py); index
    containers pass their lists' (indexes.py).
    """
    using = definition.db_alias()
    if not use_cache:
        return (query or versions.query_rows)(definition, user_keys, using)
    try:
        return _read_through(definition, user_keys, using, use_db, query, fill)
    except CacheUnavailable as exc:
        _log_error(definition, exc)
        if not use_db:
            raise
        return (query or versions.query_rows)(definition, user_keys, using)


def _read_through(definition: Definition, user_keys: list[str], using: str, use_db: bool, query, fill) -> dict:
    found, misses = {}, []
    # Once per read, not per key; before the fetch, which must see what it delivers
    # (a block cachelayer.testing counts as committed delivers on the next look).
    written = transactions.written_test(using, definition.name)
    states, unreachable = versions.fetch(definition, user_keys)  # unreachable: the database answers, no fill
    if unreachable:
        if not use_db:  # cache_only: counted by read()
            raise CacheUnavailable(f"cache {definition.cache_alias}: cannot read {unreachable[0]!r} now")
        stats.incr(definition.name, "errors")
    for key, state in states.items():
        if state.row is MISSING or (written is not None and written(key)):
            misses.append(state)
        elif state.row is not ABSENT:
            found[key] = state.row
    _count(definition, states, misses)
    if not use_db or not (misses or unreachable):
        return found
    if len(misses) == 1 and not unreachable and fillable(definition, using, misses):
        found.update(leases.read_with_lease(definition, misses[0], using, query, fill))
        return found
    rows = (query or versions.query_rows)(definition, [s.key for s in misses] + unreachable, using)
    to_fill = fillable(definition, using, misses)
    if to_fill:
        try:
            (fill or versions.fill)(definition, to_fill, rows)
        except CacheUnavailable:
            stats.incr(definition.name, "errors")  # only the fill is lost; the breaker logged it
    found.update(rows)
    return found


def _count(definition: Definition, states: dict, misses: list) -> None:
    """Count hits and misses, and send the per-key signals only when someone listens."""
    name, model = definition.name, definition.model
    stats.incr(name, "hits", len(states) - len(misses))
    if misses:
        stats.incr(name, "misses", len(misses))
    if signals.cache_hit.has_listeners(model):
        missed = {state.key for state in misses}
        for key in states:
            if key not in missed:
                signals.cache_hit.send(sender=model, container=name, key=key)
    if misses and signals.cache_miss.has_listeners(model):
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
    logger.debug("cachelayer: cache error on container %s: %s", definition.name, exc)
