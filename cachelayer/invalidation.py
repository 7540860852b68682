"""Invalidate after commit: bump row versions, or the generation when the
affected keys are unknown. Nothing touches the cache before the commit, so
a rollback leaves it untouched; what the cache does not take after the
commit is kept in the outbox (outbox.py).
"""

from __future__ import annotations

from functools import partial

from django.db import transaction

from cachelayer import outbox, signals, stats, transactions
from cachelayer.containers import Definition


def invalidate_keys(using: str, definition: Definition, keys) -> None:
    """Outdate ``keys`` of a container once the current transaction commits."""
    keys = sorted(set(keys))
    if not keys:
        return
    transactions.note_write(using, definition.name, keys)
    transaction.on_commit(partial(deliver, definition, keys, using), using=using, robust=True)


def invalidate_container(using: str | None, definition: Definition) -> None:
    """Outdate every key of a container (O(1): bump its generation) after commit."""
    if using is None:
        deliver(definition, None)
        return
    transactions.note_write(using, definition.name, None)
    transaction.on_commit(partial(deliver, definition, None, using), using=using, robust=True)


def deliver(definition: Definition, keys, using: str | None = None) -> None:
    """Bump versions now (keys=None: the container generation).

    What the cache does not take goes to the outbox (in ``using``, the
    database of the write), to be replayed before its servers are read again.
    """
    adapter, space = definition.adapter, definition.keys
    if keys is None:
        failed = adapter.incr_everywhere(space.gen)
        if failed:
            outbox.record(using, adapter, definition.name, shared=[space.gen], servers=failed)
    else:
        parts = {key: space.part(key) for key in keys}
        groups = {key: ([space.ver(part)], [space.data(part)]) for key, part in parts.items()}
        failed = adapter.invalidate(groups)
        if failed:
            outbox.record(using, adapter, definition.name, groups={route: groups[route] for route in failed})
    if failed:
        stats.incr(definition.name, "errors")
    stats.incr(definition.name, "invalidations", len(keys) if keys else 1)
    signals.cache_invalidated.send(sender=definition.model, container=definition.name, keys=keys)
