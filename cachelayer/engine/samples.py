"""Sampled committed writes, kept in a small ring per container in its cache.

The freshness monitor (``manage.py cache_monitor``, tasks/monitoring.py) reads
the ring to learn which keys were just written, and when. Every delivery of
invalidations adds to it, this process's own writes and the follower's
alike, after the versions were bumped: each key with probability
``MONITOR_SAMPLE_RATE``, into a random one of ``SLOTS`` slots (one ``store``
round trip per delivery that sampled a key). The ring is a sample: a slot
overwritten before the monitor read it is a sample lost, never a wrong one.

Off (``MONITOR_SAMPLE_RATE`` 0, the default), a delivery pays one settings
look-up (bench/monitor_overhead.py measures it).
"""

from __future__ import annotations

import json
import logging
import random
import time
from typing import NamedTuple

from cachelayer.core import conf
from cachelayer.engine import versions
from cachelayer.engine.definitions import Definition
from cachelayer.exceptions import CacheUnavailable

logger = logging.getLogger("cachelayer")

SLOTS = 256  # slots per container: the monitor reads them all in one multi-get
ENTRY_TIMEOUT = 120  # s a sample lives: the monitor reads the ring several times a second


class Sample(NamedTuple):
    """One sampled write: the user key and when its invalidation was delivered (unix time)."""

    key: str
    written: float


def publish(definition: Definition, keys) -> None:
    """Add a sample of ``keys`` (just invalidated) to the container's ring; never raises."""
    rate = conf.get("MONITOR_SAMPLE_RATE")
    if not rate or not keys:
        return
    chosen = [key for key in keys if random.random() < rate]
    if not chosen:
        return
    now = time.time()
    slots = {definition.keys.sample(random.randrange(SLOTS)): json.dumps([key, now]) for key in chosen}
    try:
        definition.adapter.store({None: slots}, ENTRY_TIMEOUT)
    except CacheUnavailable as exc:
        logger.debug(
            "cachelayer: could not sample writes of %s: %s",
            definition.name,
            exc,
            extra=definition.log_fields(keys=chosen, error=exc),
        )


def read(definition: Definition) -> dict[str, str] | None:
    """Return ``{slot key: raw entry}`` of the container's ring, or None when its cache cannot be read."""
    keys = definition.keys
    return versions.fetch_fresh(definition.adapter, {None: [keys.sample(slot) for slot in range(SLOTS)]}).answered()


def decode(raw) -> Sample | None:
    """Return the sample a slot holds; one that cannot be read is none."""
    try:
        key, written = json.loads(raw)
        return Sample(str(key), float(written))
    except (TypeError, ValueError):
        return None
