"""Adapter for memcached, built from a Django PyMemcacheCache CACHES entry.

Django closes its memcached clients on every request_finished, so each
request would pay a new TCP connect; this adapter keeps its own pooled,
long-lived client per server. Servers are chosen by rendezvous hashing of
the route, so the keys of one read share a server and one round trip.
"""

from __future__ import annotations

import socket
from collections import defaultdict
from typing import Any

from pymemcache.client.base import PooledClient
from pymemcache.client.rendezvous import RendezvousHash
from pymemcache.exceptions import MemcacheError

from cachelayer.adapters.base import Adapter, CacheUnavailable, Route, expiry_seconds

DEFAULT_TIMEOUT = 0.5  # seconds; pymemcache's own default is to wait forever
FAILURES = (MemcacheError, OSError, socket.timeout)
ITEM_SIZE_MAX = 1024 * 1024 - 1024  # memcached's default item size limit, less key and header room


def _servers(location) -> list[str]:
    if isinstance(location, str):
        location = location.replace(",", ";").split(";")
    return [server.strip() for server in location if server.strip()]


class MemcachedAdapter(Adapter):
    max_value_size = ITEM_SIZE_MAX

    def __init__(self, alias: str, params: dict):
        super().__init__(alias, params)
        options = params.get("OPTIONS", {})
        self.servers = _servers(params.get("LOCATION", "127.0.0.1:11211"))
        self.clients = {
            server: PooledClient(
                server,
                connect_timeout=options.get("connect_timeout") or DEFAULT_TIMEOUT,
                timeout=options.get("timeout") or DEFAULT_TIMEOUT,
                no_delay=True,
                default_noreply=False,
                max_pool_size=options.get("max_pool_size", 64),
            )
            for server in self.servers
        }
        self._ring = RendezvousHash(nodes=self.servers)

    def _server(self, route: Route) -> str:
        if route is None or len(self.servers) == 1:
            return self.servers[0]
        return self._ring.get_node(str(route))

    def _call(self, server: str, method: str, *args, **kwargs):
        try:
            return getattr(self.clients[server], method)(*args, **kwargs)
        except FAILURES as exc:
            raise CacheUnavailable(f"memcached {server} ({self.alias}): {exc!r}") from exc

    def _by_server(self, groups: dict) -> dict[str, list]:
        routes = defaultdict(list)
        for route in groups:
            routes[self._server(route)].append(route)
        return routes

    def fetch(self, groups: dict[Route, list[str]]) -> dict[Route, dict[str, Any]]:
        results = {}
        for server, routes in self._by_server(groups).items():
            wanted = list({key for route in routes for key in groups[route]})
            found = self._call(server, "get_many", wanted)
            for route in routes:
                results[route] = {key: found[key] for key in groups[route] if key in found}
        return results

    def store(self, groups: dict[Route, dict[str, Any]], timeout: float) -> None:
        for server, routes in self._by_server(groups).items():
            mapping = {key: value for route in routes for key, value in groups[route].items()}
            self._call(server, "set_many", mapping, expire=expiry_seconds(timeout))

    def add(self, key: str, value: Any, timeout: float, route: Route) -> bool:
        return bool(self._call(self._server(route), "add", key, value, expire=expiry_seconds(timeout)))

    def delete(self, groups: dict[Route, list[str]]) -> None:
        for server, routes in self._by_server(groups).items():
            self._call(server, "delete_many", [key for route in routes for key in groups[route]])

    def invalidate(self, groups: dict[Route, tuple[list[str], list[str]]]) -> None:
        for server, routes in self._by_server(groups).items():
            for route in routes:
                for key in groups[route][0]:
                    self._call(server, "incr", key, 1)  # NOT_FOUND is fine: nothing to outdate
            self._call(server, "delete_many", [key for route in routes for key in groups[route][1]])

    def incr_everywhere(self, key: str) -> None:
        for server in self.servers:
            self._call(server, "incr", key, 1)

    def compare_and_set(self, key, expected, new, timeout, route) -> bool:
        server = self._server(route)
        value, token = self._call(server, "gets", key)
        if value is None or value != expected:
            return False
        return bool(self._call(server, "cas", key, new, token, expire=expiry_seconds(timeout)))

    def add_counts(self, counts: dict[str, int]) -> None:
        server = self._server(None)
        for key, amount in counts.items():
            if self._call(server, "incr", key, amount) is None and not self._call(server, "add", key, amount):
                self._call(server, "incr", key, amount)  # another process added it first

    def server_stats(self) -> dict[str, dict]:
        stats = {}
        for server, client in self.clients.items():
            try:
                stats[server] = {k.decode(): v for k, v in client.stats().items()}
            except FAILURES as exc:
                stats[server] = {"error": repr(exc)}
        return stats

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
