"""Which server of a memcached pool holds a route, and how to tell server processes apart.

Both memcached adapters route with the same scores, so a pool finds its keys
on the same servers through either client; the topology check
(engine/topology.py) scores routes under other processes' server lists too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable
from typing import Any

Route = Hashable  # the user key that picks the server; None means "any server" (shared keys)
ROUTES_REMEMBERED = 100_000  # route -> server answers kept per memo (then forgotten at once)


class RouteMemo:
    """Remember ``rendezvous`` answers: a get_many of 100 keys on 3 servers
    would hash 300 times (~200 us). The servers of an adapter never change
    (a new LOCATION builds a new adapter), so an answer never goes stale."""

    def __init__(self, servers: list[str]):
        self._known: dict[Route, str]
        self.servers, self._known = servers, {}

    def server_of(self, route: Route) -> str:
        server = self._known.get(route)
        if server is None:
            if len(self._known) >= ROUTES_REMEMBERED:
                self._known.clear()
            server = self._known[route] = rendezvous(self.servers, route)
        return server


def rendezvous(servers: list[str], route: Route) -> str:
    """Return the server of ``route`` by rendezvous hashing (highest score wins).

    The scores of pymemcache's ``RendezvousHash`` (``"{server}-{route}"``),
    hashed with blake2b in C: pymemcache's murmur3 is pure Python (~6 us a
    call, once per server for every key routed). Both memcached adapters use
    it, so a pool finds its keys on the same servers through either client.
    """
    winner: Any  # None only until the first server scores
    best, winner = -1, None
    for server in servers:
        score = int.from_bytes(hashlib.blake2b(f"{server}-{route}".encode(), digest_size=8).digest(), "big")
        if score > best or (score == best and server > winner):
            best, winner = score, server
    return winner


def memcached_identity(stats: dict) -> str:
    """A memcached process: its pid and start time (``time - uptime`` is fixed for a process)."""
    return f"{int(stats['pid'])}:{int(stats['time']) - int(stats['uptime'])}"


def split_location(location) -> list[str]:
    """Return the servers of a memcached LOCATION (a list, or one string joined by ``,`` or ``;``)."""
    if isinstance(location, str):
        location = location.replace(",", ";").split(";")
    return [server.strip() for server in location if server.strip()]
