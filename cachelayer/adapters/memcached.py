"""Adapter for memcached, built from a Django PyMemcacheCache CACHES entry.

Django closes its memcached clients on every request_finished, so each
request would pay a new TCP connect; this adapter keeps its own pooled,
long-lived client per server. Servers are chosen by rendezvous hashing of
the route, so the keys of one read share a server and one round trip.
"""

from __future__ import annotations

import hashlib
import socket

from pymemcache.client.base import Client
from pymemcache.client.rendezvous import RendezvousHash
from pymemcache.exceptions import MemcacheError

from cachelayer import conf
from cachelayer.adapters.base import Adapter, Route, expiry_seconds


def _score(text: str, seed: int) -> int:
    """Rendezvous score at C speed: pymemcache's default murmur3 is pure Python
    (~6 us a call, once per server for every key routed)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class _Pool:
    """Idle connections to one server, shared by threads without a lock.

    pymemcache's PooledClient takes a lock twice and enters a context manager
    on every call, a tenth of what a hit costs in Python; list.pop and
    list.append are atomic, which is all a pool of interchangeable
    connections needs. A connection whose call fails is closed, never reused.
    """

    def __init__(self, server: str, options: dict, max_idle: int):
        self.server, self.options, self.max_idle = server, options, max_idle
        self.idle: list[Client] = []

    def run(self, call, *args, **kwargs):
        """Return ``call(client, *args, **kwargs)`` on an idle connection (a new one when none is)."""
        try:
            client = self.idle.pop()
        except IndexError:
            client = Client(self.server, **self.options)
        try:
            result = call(client, *args, **kwargs)
        except BaseException:
            client.close()
            raise
        if len(self.idle) < self.max_idle:
            self.idle.append(client)
        else:
            client.close()
        return result

    def close(self) -> None:
        idle, self.idle = self.idle, []
        for client in idle:
            client.close()


def _invalidate(client: Client, counters: list[str], payloads: list[str]) -> None:
    # One round trip: every command but the last goes unanswered (noreply),
    # and memcached answers the last only after it ran the others. NOT_FOUND
    # is fine for a counter (nothing to outdate); deleting payloads only
    # frees memory early (the bumped version alone keeps them from being served).
    if payloads:
        client.delete_many(payloads, noreply=True)
    for key in counters[:-1]:
        client.incr(key, 1, noreply=True)
    if counters:
        client.incr(counters[-1], 1)


def _compare_and_set(client: Client, key: str, expected, new, expire: int) -> bool:
    value, token = client.gets(key)
    if value is None or value != expected:
        return False
    return client.cas(key, new, token, expire=expire)


def _add_counts(client: Client, counts: dict[str, int]) -> None:
    for key, amount in counts.items():
        if client.incr(key, amount) is None and not client.add(key, amount):
            client.incr(key, amount)  # another process added it first


def _servers(location) -> list[str]:
    if isinstance(location, str):
        location = location.replace(",", ";").split(";")
    return [server.strip() for server in location if server.strip()]


class MemcachedAdapter(Adapter):
    failures = (MemcacheError, OSError, socket.timeout)
    # memcached's default item size limit (-I 1m) less room for the key and item header
    default_max_item_size = 1024 * 1024 - 512

    def __init__(self, alias: str, params: dict):
        options = params.get("OPTIONS", {})
        default_timeout = conf.get("SOCKET_TIMEOUT")  # pymemcache's own default waits forever
        servers = _servers(params.get("LOCATION", "127.0.0.1:11211"))
        super().__init__(alias, params, servers)
        self._client_options = {
            "connect_timeout": options.get("connect_timeout") or default_timeout,
            "timeout": options.get("timeout") or default_timeout,
            "no_delay": True,
            "default_noreply": False,
        }
        self._max_idle = options.get("max_pool_size", 64)
        self.pools = {server: self._new_pool(server) for server in servers}
        self._ring = RendezvousHash(nodes=servers, hash_function=_score)

    def _new_pool(self, server: str) -> _Pool:
        return _Pool(server, self._client_options, self._max_idle)

    def server_of(self, route: Route) -> str:
        if route is None or len(self.servers) == 1:
            return self.servers[0]
        return self._ring.get_node(str(route))

    def _get_many(self, server, keys):
        return self.pools[server].run(Client.get_many, keys)

    def _set_many(self, server, mapping, timeout):
        self.pools[server].run(Client.set_many, mapping, expire=expiry_seconds(timeout))

    def _add(self, server, key, value, timeout):
        return self.pools[server].run(Client.add, key, value, expire=expiry_seconds(timeout))

    def _delete_many(self, server, keys):
        self.pools[server].run(Client.delete_many, keys)

    def _invalidate(self, server, counters, payloads):
        self.pools[server].run(_invalidate, counters, payloads)

    def _compare_and_set(self, server, key, expected, new, timeout):
        return self.pools[server].run(_compare_and_set, key, expected, new, expiry_seconds(timeout))

    def _add_counts(self, server, counts):
        self.pools[server].run(_add_counts, counts)

    def _drop_connections(self, server):
        # A new pool: connections other threads hold keep working (or fail) on their own.
        self.pools[server] = self._new_pool(server)

    def _ping(self, server):
        self.pools[server].run(Client.version)

    def _stats(self, server):
        return {k.decode(): v for k, v in self.pools[server].run(Client.stats).items()}

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
