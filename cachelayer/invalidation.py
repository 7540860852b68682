"""Invalidate after commit: bump row versions, or the generation when the
affected keys are unknown. Nothing touches the cache before the commit, so
a rollback leaves it untouched.
"""

from __future__ import annotations

import logging
from functools import partial

from django.db import transaction

from cachelayer import signals, stats, transactions
from cachelayer.adapters import CacheUnavailable
from cachelayer.containers import Definition

logger = logging.getLogger("cachelayer")


def invalidate_keys(using: str, definition: Definition, keys) -> None:
    """Outdate ``keys`` of a container once the current transaction commits."""
    keys = sorted(set(keys))
    if not keys:
        return
    transactions.note_write(using, definition.name, keys)
    transaction.on_commit(partial(deliver, definition, keys), using=using, robust=True)


def invalidate_container(using: str | None, definition: Definition) -> None:
    """Outdate every key of a container (O(1): bump its generation) after commit."""
    if using is None:
        deliver(definition, None)
        return
    transactions.note_write(using, definition.name, None)
    transaction.on_commit(partial(deliver, definition, None), using=using, robust=True)


def deliver(definition: Definition, keys) -> None:
    """Bump versions now (keys=None: the container generation)."""
    adapter = definition.adapter
    try:
        if keys is None:
            adapter.incr_everywhere(definition.keys.gen)
        else:
            space = definition.keys
            parts = {key: space.part(key) for key in keys}
            adapter.invalidate({key: ([space.ver(p)], [space.data(p)]) for key, p in parts.items()})
    except CacheUnavailable as exc:
        stats.incr(definition.name, "errors")
        logger.error("cachelayer: could not invalidate %s %s: %s", definition.name, keys or "(all)", exc)
        return
    stats.incr(definition.name, "invalidations", len(keys) if keys else 1)
    signals.cache_invalidated.send(sender=definition.model, container=definition.name, keys=keys)
