"""A circuit breaker per cache server.

After BREAKER_THRESHOLD consecutive failures a server is skipped for
BREAKER_COOLDOWN seconds instead of paying the socket timeout on every call;
then calls probe it again: one more failure re-opens it, a success closes it. Each burst of failures is logged once when it
starts, once when the breaker opens and once when the server answers again.

A failure also marks the server dirty (health.py): the probe after a
cool-down is the outbox's replay, never a read that could return a value the
outbox still has to outdate.
"""

from __future__ import annotations

import logging
import threading
import time

from cachelayer.core import conf, logfields

logger = logging.getLogger("cachelayer")


class Breaker:
    def __init__(self, cache: str, server: str):
        self.cache, self.server = cache, server
        self.name = f"{cache}/{server}"
        self.log_fields = logfields.fields(cache=cache, server=server)
        self.failures = 0
        self.open_until = 0.0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """Return whether a call may go to the server now (after a cool-down, it probes)."""
        return not self.open_until or time.monotonic() >= self.open_until

    def success(self) -> None:
        if self.failures:
            with self._lock:
                if self.open_until:
                    logger.warning(
                        "cachelayer: cache %s answers again; closing its circuit breaker",
                        self.name,
                        extra=self.log_fields,
                    )
                self.failures, self.open_until = 0, 0.0

    def failure(self, exc: BaseException) -> None:
        with self._lock:
            self.failures += 1
            if self.failures == 1:
                logger.warning(
                    "cachelayer: cache %s failed (%s); the database serves reads", self.name, exc, extra=self.log_fields
                )
            if self.failures >= conf.get("BREAKER_THRESHOLD"):
                if not self.open_until:
                    logger.warning(
                        "cachelayer: cache %s failed %d times; skipping it for %.1f s",
                        self.name,
                        self.failures,
                        conf.get("BREAKER_COOLDOWN"),
                        extra=self.log_fields,
                    )
                self.open_until = time.monotonic() + conf.get("BREAKER_COOLDOWN")
