"""The multi-get of every adapter: routes sorted into servers, one request each, answers read back.

``fetch`` (threads) and ``fetch_async`` (cache_serve's event loop) share
everything but the wait: which servers may be asked (not dirty, breaker
closed, the route not disputed by another live server list), and what the
answers (or exceptions) mean for each route and each server's breaker.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from cachelayer.adapters import trips
from cachelayer.adapters.routing import Route
from cachelayer.core import conf

if TYPE_CHECKING:
    from cachelayer.adapters.breaker import Breaker
    from cachelayer.adapters.health import Health


class Fetched(NamedTuple):
    """What one multi-get got: the keys found, by route, and the routes it could not read
    (their server is dirty, skipped by its breaker, or failed)."""

    found: dict[Route, dict[str, Any]]
    unreachable: list[Route]

    def value(self, key: str, route: Route = None) -> Any:
        """Return what the cache holds under ``key`` of ``route``, or None when it
        holds nothing there or the route's server could not be read."""
        return self.found.get(route, {}).get(key)

    def answered(self, route: Route = None) -> dict[str, Any] | None:
        """Return the keys found on ``route``, or None when its server could not be read."""
        return self.found.get(route)


class _Asked(NamedTuple):
    """A multi-get sorted by server: the keys to ask each, and what is known without asking."""

    by_server: dict[str, list]
    wanted: dict[str, list[str]]
    unreachable: list
    found: dict


class MultiGet:
    """The multi-get half of Adapter (base.py), which provides the per-server primitives and breakers."""

    if TYPE_CHECKING:  # provided by Adapter
        breakers: dict[str, Breaker]
        health: Health
        others: list
        failures: tuple[type[BaseException], ...]
        congestion: tuple[type[BaseException], ...]
        process_local: bool

        def _get_many(self, server: str, keys: list[str]) -> dict[str, Any]: ...
        def _by_server(self, routes) -> dict[str, list]: ...
        def _failed(self, server: str, exc: BaseException) -> Exception: ...
        def trips_to(self, servers) -> int: ...

    def _get_many_servers(self, wanted: dict[str, list[str]]) -> dict[str, Any]:
        """Return ``{server: found keys, or the client's exception}`` for every server asked.

        One server after another here; an adapter whose client can do better
        sends every request before it reads any answer (memcached.py).
        """
        results: dict[str, Any] = {}
        for server, keys in wanted.items():
            try:
                results[server] = self._get_many(server, keys)
            except self.congestion + self.failures as exc:
                results[server] = exc
        return results

    def _get_many_chunked(self, wanted: dict[str, list[str]]) -> dict[str, Any]:
        """``_get_many_servers`` in rounds of at most CHUNK_KEYS keys a server.

        One huge request (a get_many of 200,000 rows) would stall its
        connection past the socket timeout (the server stops reading while
        its unread reply fills the socket) and open the breaker for every
        read of the process: the breaker judges servers, not requests.
        """
        chunk = conf.get("CHUNK_KEYS")
        if max(map(len, wanted.values())) <= chunk:  # every read of a hit: no generator
            return self._get_many_servers(wanted)
        results: dict[str, Any] = {server: {} for server in wanted}
        for start in range(0, max(map(len, wanted.values())), chunk):
            part = {
                server: keys[start : start + chunk]
                for server, keys in wanted.items()
                if len(keys) > start and isinstance(results[server], dict)
            }
            if start and trips.counting():
                trips.add(self.trips_to(part))
            for server, answer in self._get_many_servers(part).items():
                if isinstance(answer, BaseException):
                    results[server] = answer
                else:
                    results[server].update(answer)
        return results

    def fetch(self, groups: dict[Route, list[str]], shared: bool = False) -> Fetched:
        """Get the keys of every route: one round trip per server touched,
        all of them sent before any answer is read where the client allows.

        Nothing raises: the routes of a server that is dirty, skipped by its
        breaker or failing come back in ``unreachable``. With ``shared``, the
        routes of one server share one dict of every key found on it (no
        per-route copy: the caller looks keys up by name).
        """
        asked = self._asked(groups)
        answers: dict[str, Any] = self._get_many_chunked(asked.wanted) if asked.wanted else {}
        return self._answered(groups, asked, answers, shared)

    async def fetch_async(self, groups: dict[Route, list[str]], shared: bool = False) -> Fetched:
        """``fetch`` for an event loop (cache_serve's): the loop never waits on a socket."""
        asked = self._asked(groups)
        answers: dict[str, Any] = await self._get_many_async(asked.wanted) if asked.wanted else {}
        return self._answered(groups, asked, answers, shared)

    async def _get_many_async(self, wanted: dict[str, list[str]]) -> dict[str, Any]:
        """``_get_many_chunked`` off the event loop: on a thread of the loop's executor
        (an in-process cache answers at once); an adapter whose client can do better
        makes it the loop's own I/O (memcached.py)."""
        if self.process_local:
            return self._get_many_chunked(wanted)
        return await asyncio.to_thread(self._get_many_chunked, wanted)

    def _asked(self, groups: dict[Route, list[str]]) -> _Asked:
        """Sort the routes into servers to ask and routes no server may answer for."""
        if time.monotonic() >= self.health.trusted_until:  # the topology was not checked in time
            self.health.mark_all_dirty()
        found: dict[Route, dict[str, Any]]
        by_server, wanted, unreachable, found = self._by_server(groups), {}, [], {}
        if self.others:
            unreachable = self._disputed(by_server)
        dirty = self.health.dirty
        for server, routes in by_server.items():
            if (dirty and server in dirty) or not self.breakers[server].allow():
                unreachable.extend(routes)
                continue
            # one key's read: nothing to share or split
            keys = groups[routes[0]] if len(routes) == 1 else list({k for r in routes for k in groups[r]})
            if keys:
                wanted[server] = keys
            else:  # a get of no keys is a protocol error on some servers: nothing to ask
                found.update((route, {}) for route in routes)
        if wanted and trips.counting():
            trips.add(self.trips_to(wanted))
        return _Asked(by_server, wanted, unreachable, found)

    def _answered(self, groups: dict[Route, list[str]], asked: _Asked, answers: dict, shared: bool) -> Fetched:
        """Return what the servers' answers (or exceptions) hold for each route; count them on the breakers."""
        found, unreachable = asked.found, asked.unreachable
        for server, answer in answers.items():
            routes = asked.by_server[server]
            if isinstance(answer, BaseException):
                if not isinstance(answer, self.congestion):
                    self._failed(server, answer)
                unreachable.extend(routes)
                continue
            self.breakers[server].success()
            if len(routes) == 1 or shared:
                found.update(dict.fromkeys(routes, answer))
                continue
            for route in routes:
                found[route] = {key: answer[key] for key in groups[route] if key in answer}
        return Fetched(found, unreachable)

    def _disputed(self, by_server: dict[str, list]) -> list:
        """Take out of ``by_server`` (and return) the routes another live server
        list sends elsewhere: that process's writes never reach this copy."""
        disputed: list[Route] = []
        for server, routes in by_server.items():
            kept: list[Route] = []
            for route in routes:
                agreed = route is None or all(other.server_of(route) == server for other in self.others)
                (kept if agreed else disputed).append(route)
            by_server[server] = kept
        return disputed
