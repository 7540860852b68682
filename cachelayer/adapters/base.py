"""The one interface between cachelayer and a cache client.

Every adapter speaks in *routes*: the user key that chooses the server in a
pool (libmemcached's "master key"). All keys one read needs travel with one
route, so they live on one server and are fetched in one round trip. Keys
shared by a container (generation, configuration version) exist once per
server; ``incr_everywhere`` bumps them on all of them.

Client errors are translated once, here, into ``CacheUnavailable``, and
counted by the server's circuit breaker (breaker.py). Reads never raise:
``fetch`` returns the routes it could not read (``Fetched.unreachable``),
and the caller decides (the read path degrades to the database; the
repository's cache_only verbs raise).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from cachelayer.adapters import trips
from cachelayer.adapters.breaker import Breaker
from cachelayer.adapters.health import Health
from cachelayer.adapters.multiget import MultiGet
from cachelayer.adapters.routing import Route, RouteMemo
from cachelayer.core import conf
from cachelayer.exceptions import CacheUnavailable


class Adapter(MultiGet, ABC):
    """Cache operations cachelayer needs, with one round trip per server.

    Subclasses implement the per-server primitives (``_get_many`` ...);
    this class routes keys to servers and runs every call through the
    server's circuit breaker, so one dead server of a pool costs only its
    own share of the keys.
    """

    #: what the client raises when a server is unreachable or misbehaves
    failures: tuple[type[BaseException], ...] = ()
    #: what it raises when this process has no free connection (checked before
    #: ``failures``): a cache failure for the call, but the breaker does not count it
    congestion: tuple[type[BaseException], ...] = ()
    #: largest payload the backend stores (memcached's item size limit)
    default_max_item_size: int | None = None
    #: the cache lives in this process's memory (LocMem): no other process sees it
    process_local = False
    #: this process's near-cache (adapters/nearcache.py) when the adapter keeps one (Redis, NEAR_CACHE on)
    near: Any = None

    def __init__(self, alias: str, params: dict, servers: list[str]):
        self.alias = alias
        self.params = params
        self.servers = servers
        self.breakers = {server: Breaker(alias, server) for server in servers}
        self.health = Health(servers)
        self.max_item_size = conf.get("MAX_ITEM_SIZE") or self.default_max_item_size
        # The server lists other live processes read through (engine/topology.py):
        # a key is read only where every one of them routes it too.
        self.others: list[RouteMemo] = []

    # -- per-server primitives -------------------------------------------

    @abstractmethod
    def _get_many(self, server: str, keys: list[str]) -> dict[str, Any]:
        """Return the keys found, and only those (the caller may keep the dict).
        ``keys`` is never empty (fetch asks no server for nothing)."""

    @abstractmethod
    def _set_many(self, server: str, mapping: dict[str, Any], timeout: float) -> None: ...

    @abstractmethod
    def _add(self, server: str, key: str, value: Any, timeout: float) -> bool: ...

    @abstractmethod
    def _delete_many(self, server: str, keys: list[str]) -> None: ...

    @abstractmethod
    def _invalidate(self, server: str, counters: list[str], payloads: list[str], read: list[str]) -> dict[str, Any]:
        """Add 1 to each existing counter (never create one), delete the payloads,
        then get the ``read`` keys (found ones only) in the same round trip."""

    @abstractmethod
    def _compare_and_set(self, server: str, key: str, expected: Any, new: Any, timeout: float) -> bool: ...

    @abstractmethod
    def _add_counts(self, server: str, counts: dict[str, int]) -> None:
        """Add amounts to shared counters (statistics), creating absent ones at 0."""

    @abstractmethod
    def _ping(self, server: str) -> None: ...

    @abstractmethod
    def _stats(self, server: str) -> dict: ...

    def _identity(self, stats: dict) -> str:
        """Return what tells this server process (and its data set) from any other,
        from its ``_stats``: it changes on a restart, a failover, a resync."""
        return ""

    def _drop_connections(self, server: str) -> None:
        """Close pooled connections to a server that failed: after a restart,
        each stale one would fail once more and start a new burst."""

    def server_of(self, route: Route) -> str:
        """Return the server that holds the keys of ``route`` (None: any server)."""
        return self.servers[0]

    def trips_to(self, servers) -> int:
        """Return the round trips one request to each of ``servers`` costs (one each: a node each)."""
        return len(servers)

    # -- routing and breakers --------------------------------------------

    def _guarded(self, server: str, call, *args):
        self._admit(server)
        trips.add()
        try:
            result = call(server, *args)
        except self.congestion as exc:
            raise self.unavailable(server, str(exc)) from exc
        except self.failures as exc:
            raise self._failed(server, exc) from exc
        self.breakers[server].success()
        return result

    def unavailable(self, server: str | None, why: str) -> CacheUnavailable:
        """Return the CacheUnavailable of a call to ``server`` (None: the cache as a whole) that failed for ``why``."""
        where = self.alias if server is None else f"{self.alias}/{server}"
        return CacheUnavailable(f"cache {where}: {why}", cache=self.alias, server=server)

    def _admit(self, server: str) -> None:
        if not self.breakers[server].allow():
            raise self.unavailable(server, "skipped while its circuit breaker is open")

    def _failed(self, server: str, exc: BaseException) -> CacheUnavailable:
        """Count a client failure on ``server`` and return it translated (the one translation)."""
        breaker = self.breakers[server]
        breaker.failure(exc)
        self.health.mark_dirty(server)
        self._drop_connections(server)
        return self.unavailable(server, repr(exc))

    def _by_server(self, routes) -> dict[str, list]:
        if len(self.servers) == 1:
            return {self.servers[0]: list(routes)}
        grouped = defaultdict(list)
        for route in routes:
            grouped[self.server_of(route)].append(route)
        return grouped

    # -- health: what the outbox reads and marks (health.py) ---------------

    def dirty_servers(self) -> list[str]:
        """Return the servers that may have missed invalidations (none is read)."""
        return [server for server in self.servers if server in self.health.dirty]

    def topology_due(self) -> bool:
        """Return whether the topology (engine/topology.py) is due to be checked again."""
        return time.monotonic() >= self.health.renew_at

    def may_call(self, server: str) -> bool:
        """Return whether ``server``'s breaker lets a call through now (a probe after a cool-down)."""
        return self.breakers[server].allow()

    # -- the interface -----------------------------------------------------

    def store(self, groups: dict[Route, dict[str, Any]], timeout: float) -> None:
        """Store the values of every route (timeout in seconds, 0 = no expiry)."""
        chunk = conf.get("CHUNK_KEYS")
        for server, routes in self._by_server(groups).items():
            items = [item for route in routes for item in groups[route].items()]
            for start in range(0, len(items), chunk):
                self._guarded(server, self._set_many, dict(items[start : start + chunk]), timeout)

    def add(self, key: str, value: Any, timeout: float, route: Route) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored."""
        return bool(self._guarded(self.server_of(route), self._add, key, value, timeout))

    def delete(self, groups: dict[Route, list[str]]) -> None:
        """Delete the keys of every route (absent keys are fine)."""
        chunk = conf.get("CHUNK_KEYS")
        for server, routes in self._by_server(groups).items():
            keys = [key for route in routes for key in groups[route]]
            for start in range(0, len(keys), chunk):
                self._guarded(server, self._delete_many, keys[start : start + chunk])

    def invalidate(
        self, groups: dict[Route, tuple[list[str], list[str]]], read: Sequence[str] = ()
    ) -> tuple[list[Route], dict]:
        """Per route, add 1 to each existing counter and delete each payload.

        Counters are never created here: a new counter starts high anyway.
        The ``read`` keys (shared keys, such as the configuration version)
        are fetched from the first server that answers, in the same round
        trip. Every server is tried; returns the routes that could not be
        delivered, and the values read.
        """
        values: dict[str, Any]
        failed, values, chunk = [], {}, conf.get("CHUNK_KEYS")
        for server, routes in self._by_server(groups).items():
            for start in range(0, len(routes), chunk):  # CHUNK_KEYS routes a request (see _get_many_chunked)
                part = routes[start : start + chunk]
                counters = [key for route in part for key in groups[route][0]]
                payloads = [key for route in part for key in groups[route][1]]
                try:
                    found = self._guarded(server, self._invalidate, counters, payloads, [] if values else list(read))
                except CacheUnavailable:
                    failed.extend(routes[start:])
                    break
                values = values or found
        return failed, values

    def incr_everywhere(self, key: str, servers: list[str] | None = None) -> list[str]:
        """Add 1 to a shared key on every server (or ``servers``) where it exists.

        Returns the servers that could not be reached.
        """
        failed = []
        for server in self.servers if servers is None else servers:
            try:
                self._guarded(server, self._invalidate, [key], [], [])
            except CacheUnavailable:
                failed.append(server)
        return failed

    def compare_and_set(self, key: str, expected: Any, new: Any, timeout: float, route: Route) -> bool:
        """Store ``new`` only if the stored value still equals ``expected``."""
        return bool(self._guarded(self.server_of(route), self._compare_and_set, key, expected, new, timeout))

    def add_counts(self, counts: dict[str, int]) -> None:
        """Add amounts to shared statistics counters (kept on the first server)."""
        self._guarded(self.servers[0], self._add_counts, counts)

    def read_on(self, server: str, keys: list[str]) -> dict[str, Any]:
        """Get ``keys`` from one given server (the topology's own keys)."""
        return self._guarded(server, self._get_many, keys)

    def reset_counters(self, server: str, keys: list[str]) -> None:
        """Set counters on one server to a new time-based base: whatever they
        counted before (a lost increment, a server put back) can never match again."""
        self._guarded(server, self._set_many, dict.fromkeys(keys, new_counter()), 0)

    def store_on(self, server: str, mapping: dict[str, Any]) -> None:
        self._guarded(server, self._set_many, mapping, 0)

    def identity(self, server: str) -> str:
        """Return the identity of the server process answering at ``server`` (see ``_identity``)."""
        return self._identity(self._guarded(server, self._stats))

    def for_servers(self, servers: list[str]) -> Adapter:
        """Return a new adapter of the same client over other servers (close it after use)."""
        subclass: Any = type(self)  # a concrete adapter: built from (alias, params)
        return subclass(self.alias, {**self.params, "LOCATION": list(servers)})

    def ping(self, server: str) -> None:
        """Raise CacheUnavailable unless ``server`` answers."""
        self._guarded(server, self._ping)

    def server_stats(self) -> dict[str, dict]:
        """Return the servers' own statistics (memcached ``stats``, Redis ``INFO``)."""
        stats = {}
        for server in self.servers:
            try:
                stats[server] = self._stats(server)
            except self.congestion + self.failures as exc:
                stats[server] = {"error": repr(exc)}
        return stats

    def close(self) -> None:
        """Release connections (the adapter is long-lived; tests and reloads call this)."""


def new_counter() -> int:
    """Return a counter base that no earlier counter of the same key can reach.

    A version key that was evicted or expired restarts here, far above any
    value it held before, so an old payload can never match it again.
    """
    return time.time_ns()
