"""Invalidate after commit: bump row versions, or the generation when the
affected keys are unknown. Nothing touches the cache before the commit, so
a rollback leaves it untouched; what the cache does not take after the
commit is kept in the outbox (outbox.py).
"""

from __future__ import annotations

from collections import defaultdict
from functools import partial

from django.db import transaction

from cachelayer import outbox, signals, stats, transactions
from cachelayer.containers import Definition


def invalidate_keys(using: str, definition: Definition, keys) -> None:
    """Outdate ``keys`` of a container once the current transaction commits."""
    invalidate_many(using, {definition: keys})


def invalidate_many(using: str, changes: dict) -> None:
    """Outdate ``{definition: keys}`` once the current transaction commits,
    in one round trip per cache server however many containers map the row."""
    changes = {definition: sorted(set(keys)) for definition, keys in changes.items()}
    changes = {definition: keys for definition, keys in changes.items() if keys}
    if not changes:
        return
    for definition, keys in changes.items():
        transactions.note_write(using, definition.name, keys)
    transaction.on_commit(partial(deliver, changes, using), using=using, robust=True)


def invalidate_container(using: str | None, definition: Definition) -> None:
    """Outdate every key of a container (O(1): bump its generation) after commit."""
    if using is None:
        deliver_generation(definition)
        return
    transactions.note_write(using, definition.name, None)
    transaction.on_commit(partial(deliver_generation, definition, using), using=using, robust=True)


def deliver(changes: dict, using: str | None = None) -> None:
    """Bump the row versions of ``{definition: keys}`` now, one adapter call per cache.

    What the cache does not take goes to the outbox (in ``using``, the
    database of the write), to be replayed before its servers are read again.
    """
    by_adapter = defaultdict(dict)
    for definition, keys in changes.items():
        by_adapter[definition.adapter][definition] = keys
    for adapter, part in by_adapter.items():
        owed = {definition: _groups(definition, keys) for definition, keys in part.items()}
        merged = defaultdict(lambda: ([], []))  # containers may share a route (user key)
        for groups in owed.values():
            for route, (counters, payloads) in groups.items():
                merged[route][0].extend(counters)
                merged[route][1].extend(payloads)
        failed = set(adapter.invalidate(merged))
        for definition, groups in owed.items():
            lost = {route: groups[route] for route in groups if route in failed}
            if lost:
                outbox.record(using, adapter, definition.name, groups=lost)
            _announce(definition, part[definition], failed=bool(lost))


def deliver_generation(definition: Definition, using: str | None = None) -> None:
    """Bump the container generation on every server now (outbox for those that fail)."""
    adapter, space = definition.adapter, definition.keys
    failed = adapter.incr_everywhere(space.gen)
    if failed:
        outbox.record(using, adapter, definition.name, shared=[space.gen], servers=failed)
    _announce(definition, None, failed=bool(failed))


def _groups(definition: Definition, keys) -> dict:
    space = definition.keys
    parts = {key: space.part(key) for key in keys}
    return {key: ([space.ver(part)], [space.data(part)]) for key, part in parts.items()}


def _announce(definition: Definition, keys, failed: bool) -> None:
    if failed:
        stats.incr(definition.name, "errors")
    stats.incr(definition.name, "invalidations", len(keys) if keys else 1)
    signals.cache_invalidated.send(sender=definition.model, container=definition.name, keys=keys)
