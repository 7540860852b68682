"""The one interface between cachelayer and a cache client.

Every adapter speaks in *routes*: the user key that chooses the server in a
pool (libmemcached's "master key"). All keys one read needs travel with one
route, so they live on one server and are fetched in one round trip. Keys
shared by a container (generation, configuration version) exist once per
server; ``incr_everywhere`` bumps them on all of them.

Client errors are translated once, here, into ``CacheUnavailable``.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from typing import Any, Hashable

from cachelayer.exceptions import CachelayerError

Route = Hashable  # None means "any server" (shared keys)

THIRTY_DAYS = 30 * 86400  # memcached reads a larger expiry as a unix time


class CacheUnavailable(CachelayerError):
    """The cache did not answer (timeout, refused connection, server error)."""


class Adapter(ABC):
    """Cache operations cachelayer needs, with one round trip per server."""

    max_value_size: int | None = None  # bytes one stored value may have; None = no limit

    def __init__(self, alias: str, params: dict):
        self.alias = alias
        self.params = params

    @abstractmethod
    def fetch(self, groups: dict[Route, list[str]]) -> dict[Route, dict[str, Any]]:
        """Get the keys of every route: one round trip per server touched."""

    @abstractmethod
    def store(self, groups: dict[Route, dict[str, Any]], timeout: float) -> None:
        """Store the values of every route (timeout in seconds, 0 = no expiry)."""

    @abstractmethod
    def add(self, key: str, value: Any, timeout: float, route: Route) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored."""

    @abstractmethod
    def invalidate(self, groups: dict[Route, tuple[list[str], list[str]]]) -> None:
        """Per route, add 1 to each existing counter and delete each payload.

        Counters are never created here: a new counter starts high anyway.
        """

    @abstractmethod
    def delete(self, groups: dict[Route, list[str]]) -> None:
        """Delete the keys of every route (absent keys are fine)."""

    @abstractmethod
    def incr_everywhere(self, key: str) -> None:
        """Add 1 to a shared key on every server where it exists."""

    @abstractmethod
    def compare_and_set(self, key: str, expected: Any, new: Any, timeout: float, route: Route) -> bool:
        """Store ``new`` only if the stored value still equals ``expected``."""

    @abstractmethod
    def add_counts(self, counts: dict[str, int]) -> None:
        """Add amounts to shared counters (statistics), creating absent ones at 0."""

    @abstractmethod
    def server_stats(self) -> dict[str, dict]:
        """Return the servers' own statistics (memcached ``stats``, Redis ``INFO``)."""

    def close(self) -> None:
        """Release connections (the adapter is long-lived; tests and reloads call this)."""


def new_counter() -> int:
    """Return a counter base that no earlier counter of the same key can reach.

    A version key that was evicted or expired restarts here, far above any
    value it held before, so an old payload can never match it again.
    """
    return time.time_ns()


def expiry_seconds(timeout: float) -> int:
    """Return a memcached-style integer expiry for a timeout in seconds (0 = none)."""
    if not timeout:
        return 0
    seconds = max(1, math.ceil(timeout))
    return int(time.time()) + seconds if seconds > THIRTY_DAYS else seconds
