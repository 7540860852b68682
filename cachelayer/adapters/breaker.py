"""A circuit breaker per cache server, and the server's "dirty" mark.

After BREAKER_THRESHOLD consecutive failures a server is skipped for
BREAKER_COOLDOWN seconds instead of paying the socket timeout on every call;
then calls probe it again: one more failure re-opens it, a success closes it. Each burst of failures is logged once when it
starts, once when the breaker opens and once when the server answers again.

A server that failed may have missed invalidations (ours, or other
processes'), so it is *dirty* until the outbox has been replayed to it, and
reads never use a dirty server: the probe after a cool-down is that replay,
never a read that could return a value the outbox still has to outdate.
``epoch`` moves on every failure so that a replay only cleans a server
nothing failed on while it ran.
"""

from __future__ import annotations

import logging
import threading
import time

from cachelayer.core import conf

logger = logging.getLogger("cachelayer")


class Breaker:
    def __init__(self, name: str):
        self.name = name
        self.failures = 0
        self.open_until = 0.0
        self.dirty = True  # unknown until the outbox has been replayed once
        self.epoch = 0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """Return whether a call may go to the server now (after a cool-down, it probes)."""
        return not self.open_until or time.monotonic() >= self.open_until

    def success(self) -> None:
        if self.failures:
            with self._lock:
                if self.open_until:
                    logger.warning("cachelayer: cache %s answers again; closing its circuit breaker", self.name)
                self.failures, self.open_until = 0, 0.0

    def failure(self, exc: Exception) -> None:
        with self._lock:
            self.failures += 1
            self.mark_dirty()
            if self.failures == 1:
                logger.warning("cachelayer: cache %s failed (%s); the database serves reads", self.name, exc)
            if self.failures >= conf.get("BREAKER_THRESHOLD"):
                if not self.open_until:
                    logger.warning(
                        "cachelayer: cache %s failed %d times; skipping it for %.1f s",
                        self.name, self.failures, conf.get("BREAKER_COOLDOWN"),
                    )
                self.open_until = time.monotonic() + conf.get("BREAKER_COOLDOWN")

    def mark_dirty(self) -> None:
        self.dirty = True
        self.epoch += 1

    def mark_clean(self, epoch: int) -> None:
        """Clear the dirty mark unless something failed since ``epoch`` was read."""
        with self._lock:
            if self.epoch == epoch:
                self.dirty = False
