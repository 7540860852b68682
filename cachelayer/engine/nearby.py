"""What a read may answer without a round trip: the request memo and the near-cache.

The read path (reads.py) asks ``Local.of`` first: keys the memo (memo.py)
or this process's near-cache (adapters/nearcache.py) holds are answered
there and counted as hits; the others go to the cache, and what the cache
answered is kept for next time. A key the current transaction wrote is
never answered here (read-your-writes), nor kept.

The near-cache serves a container only when every write to it bumps a
version (no ``cache_only`` get, set or delete policy: those change payloads
in place), it is not an index container, this process owes the server no
invalidations (its outbox, adapters/health.py), and the topology is not due
to be checked (engine/topology.py: then the read goes to the cache, which checks it).
"""

from __future__ import annotations

from cachelayer import signals
from cachelayer.adapters.nearcache import MISSING as NEAR_MISSING
from cachelayer.engine import memo, stats
from cachelayer.engine.definitions import Definition
from cachelayer.engine.versions import ABSENT, MISSING


class Local:
    """One read's view of the memo and the near-cache."""

    __slots__ = ("definition", "memo", "near", "token")

    def __init__(self, definition: Definition, memo_, near):
        self.definition, self.memo, self.near, self.token = definition, memo_, near, None

    @classmethod
    def of(cls, definition: Definition) -> Local | None:
        """Return the read's view, or None when neither the memo nor a near-cache applies."""
        current = memo.current()
        adapter = definition.adapter
        near = adapter.near
        if near is not None and (not definition.near_eligible or adapter.health.dirty or adapter.topology_due()):
            near = None
        if near is None and current is None:
            return None
        return cls(definition, current, near)

    def serve(self, keys: list[str], written, found: dict) -> list[str]:
        """Put the rows held here in ``found``; return the keys left for the cache."""
        definition, current, near = self.definition, self.memo, self.near
        name, left = definition.name, []
        for key in keys:
            if written is not None and written(key):
                left.append(key)
                continue
            row = MISSING if current is None else current.get(definition, key, MISSING)
            if row is MISSING and near is not None:
                row = near.get((name, key), definition)
                if row is NEAR_MISSING:
                    row = MISSING
            if row is MISSING:
                left.append(key)
            elif row is not ABSENT:
                found[key] = row
        if not left:
            _count_hits(definition, keys)
        elif len(left) < len(keys):
            rest = set(left)
            _count_hits(definition, [key for key in keys if key not in rest])
        if left and near is not None:
            self.token = near.token()  # before the cache is read: see adapters/nearcache.py
        return left

    def keep(self, states: dict, misses: list, keys: list[str], found: dict, written) -> None:
        """Keep what the read got: the cache's current payloads in the near-cache, every answer in the memo."""
        definition, near = self.definition, self.near
        if near is not None and self.token is not None:
            missed = {state.key for state in misses}
            space, timeout = definition.keys, definition.timeout
            for key, state in states.items():
                if key not in missed and state.row is not MISSING:
                    size = len(state.raw) if state.raw is not None else 0
                    near.keep(
                        self.token,
                        (definition.name, key),
                        definition,
                        space.ver(state.part),
                        space.gen,
                        state.row,
                        size,
                        timeout,
                    )
        if self.memo is not None:
            for key in keys:
                if written is None or not written(key):
                    self.memo.put(definition, key, found.get(key, ABSENT))


def _count_hits(definition: Definition, keys: list[str]) -> None:
    stats.tally(definition.name, "hits", len(keys))
    if signals.cache_hit.receivers and signals.cache_hit.has_listeners(definition.model):  # the list first: no lock
        for key in keys:
            signals.cache_hit.send(sender=definition.model, container=definition.name, key=key)
