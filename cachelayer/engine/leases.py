"""Stampede protection: on a miss only the lease holder reads and fills.

Others wait for the fill, then fall back to a plain database read (no fill)
when the lease expires, so a dead holder delays them by LEASE_TIMEOUT at most.
"""

from __future__ import annotations

import os
import time

from cachelayer.core import conf
from cachelayer.engine import loaders, stats, versions

_TOKEN = f"{os.getpid()}".encode()


def read_with_lease(definition, state, using: str) -> dict:
    """Return ``{key: entry}`` (empty when absent) for one missed key, read and
    stored by its container's loader (loaders.py)."""
    loader = loaders.of(definition)
    adapter, lease_timeout = definition.adapter, conf.get("LEASE_TIMEOUT")
    lease_key = definition.keys.lease(state.part)
    if adapter.add(lease_key, _TOKEN, lease_timeout, state.key):
        try:
            # A holder that just released its lease may have filled meanwhile.
            fresh = versions.fetch(definition, [state.key]).state(state.key)
            if fresh is None:  # its server went away since: the database answers, nothing is filled
                stats.incr(definition.name, "errors")
                return loader.query(definition, [state.key], using)
            if fresh.row is not versions.MISSING:
                return {} if fresh.row is versions.ABSENT else {state.key: fresh.row}
            rows = loader.query(definition, [state.key], using)
            loader.fill(definition, [fresh], rows)
            return rows
        finally:
            adapter.delete({state.key: [lease_key]})
    stats.incr(definition.name, "lease_waits")
    row = wait_for_fill(definition, state, time.monotonic() + lease_timeout)
    if row is versions.MISSING:
        return loader.query(definition, [state.key], using)
    return {} if row is versions.ABSENT else {state.key: row}


def wait_for_fill(definition, state, deadline: float):
    """Poll the cache until a payload for ``state``'s key appears or the deadline passes."""
    interval = conf.get("LEASE_POLL_INTERVAL")
    while time.monotonic() < deadline:
        time.sleep(interval)
        fresh = versions.fetch(definition, [state.key]).state(state.key)
        if fresh is None:
            return versions.MISSING  # its server went away: the caller reads the database
        if fresh.row is not versions.MISSING:
            return fresh.row
        interval = min(interval * 1.5, 0.05)
    return versions.MISSING
