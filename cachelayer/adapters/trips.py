"""Count the round trips to cache servers made in the current context.

The debug-toolbar panel shows what a request cost, round trips included.
Counting happens only while a ``RoundTrips`` is open in the context (thread
or asyncio task) of the call, so requests running at the same time never
see each other's trips; with none open an adapter call pays one ContextVar
lookup. One request to one server is one trip: a multi-get sent to three
servers of a pool is three, answered in parallel; on a Redis Cluster, one
per node the keys' tags live on (the adapter's ``trips_to``).
"""

from __future__ import annotations

from cachelayer.core.contextstack import ContextStack

_open = ContextStack("cachelayer_round_trips")


class RoundTrips:
    """The trips made between ``start()`` and ``stop()`` in this context."""

    def __init__(self):
        self.count = 0
        self._token = None

    def start(self) -> RoundTrips:
        self._token = _open.push(self)
        return self

    def stop(self) -> None:
        if self._token is not None:
            _open.pop(self, self._token)
            self._token = None


def counting() -> bool:
    """Return True when a counter is open in this context (else what to count need not be worked out)."""
    return bool(_open.get())


def add(trips: int = 1) -> None:
    """Count ``trips`` for every counter open in this context."""
    for counter in _open.get():
        counter.count += trips
