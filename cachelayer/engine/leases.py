"""Stampede protection: on a miss only the lease holder reads and fills.

Others wait for the fill, then fall back to a plain database read (no fill)
when the lease expires, so a dead holder delays them by LEASE_TIMEOUT at most.
"""

from __future__ import annotations

import os
import time

from cachelayer.core import conf
from cachelayer.engine import stats, versions

_TOKEN = f"{os.getpid()}".encode()


def read_with_lease(definition, state, using: str, query=None, fill=None) -> dict:
    """Return ``{key: row}`` (empty when absent) for one missed key.

    ``query(definition, keys, using)`` and ``fill(definition, states, rows)``
    default to the key read's (versions.py); index reads pass their own.
    """
    query, fill = query or versions.query_rows, fill or versions.fill
    adapter, lease_timeout = definition.adapter, conf.get("LEASE_TIMEOUT")
    lease_key = definition.keys.lease(state.part)
    if adapter.add(lease_key, _TOKEN, lease_timeout, state.key):
        try:
            # A holder that just released its lease may have filled meanwhile.
            fresh = versions.fetch(definition, [state.key]).state(state.key)
            if fresh is None:  # its server went away since: the database answers, nothing is filled
                stats.incr(definition.name, "errors")
                return query(definition, [state.key], using)
            if fresh.row is not versions.MISSING:
                return {} if fresh.row is versions.ABSENT else {state.key: fresh.row}
            rows = query(definition, [state.key], using)
            fill(definition, [fresh], rows)
            return rows
        finally:
            adapter.delete({state.key: [lease_key]})
    stats.incr(definition.name, "lease_waits")
    row = versions.wait_for_fill(definition, state, time.monotonic() + lease_timeout)
    if row is versions.MISSING:
        return query(definition, [state.key], using)
    return {} if row is versions.ABSENT else {state.key: row}
