"""Which servers of a cache may have missed invalidations ("dirty").

A server that failed may have missed invalidations (ours, or other
processes'), so it is dirty until the outbox (engine/outbox.py) has been
replayed to it, and reads never use a dirty server: ``Adapter.fetch`` reports
its routes as unreachable. Every server starts dirty (nothing is known until
the outbox was replayed once), and all turn dirty again once ``trusted_until``
passes: the replay checks the topology first (engine/topology.py). ``epoch`` moves on every mark so that a replay
only cleans a server nothing failed on while it ran.

This is the adapter's half of the outbox's protocol; the circuit breaker
(breaker.py) only decides when a server may be called.
"""

from __future__ import annotations

import threading


class Health:
    def __init__(self, servers: list[str]):
        self.dirty: set[str] = set(servers)  # read on every fetch: empty is the fast case
        self._epochs = dict.fromkeys(servers, 0)
        self._lock = threading.Lock()
        # monotonic times: when the topology is checked again (engine/topology.py),
        # and past which no server is trusted until it was (0: never checked)
        self.renew_at = self.trusted_until = 0.0
        self.servers = list(servers)

    def mark_dirty(self, server: str) -> None:
        with self._lock:
            self.dirty.add(server)
            self._epochs[server] += 1

    def mark_all_dirty(self) -> None:
        for server in self.servers:
            self.mark_dirty(server)

    def epoch(self, server: str) -> int:
        return self._epochs[server]

    def mark_clean(self, server: str, epoch: int) -> None:
        """Clear the dirty mark unless something failed since ``epoch`` was read."""
        with self._lock:
            if self._epochs[server] == epoch:
                self.dirty.discard(server)
