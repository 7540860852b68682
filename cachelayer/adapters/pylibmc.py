"""Adapter for memcached through pylibmc (libmemcached), built from a Django PyLibMCCache entry.

As for pymemcache (memcached.py), the adapter keeps its own long-lived
clients (Django's closes them on every request_finished), one pool of
libmemcached clients per server, and routes the keys of one read to one
server by rendezvous hashing of the route, with the same scores as
memcached.py: a pool reached through either client finds its keys on the
same servers. A libmemcached client is not thread-safe: each call borrows
one from the server's free list (a clone of the server's master client when
the list is empty; ``list.pop``/``append`` are atomic, where
``pylibmc.ClientPool``'s ``queue.Queue`` costs ~4 us of locking a call).

libmemcached parses replies in C and releases the GIL while it waits, so a
multi-get of a pool runs one thread per server.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pylibmc

from cachelayer.adapters.base import Adapter, Route
from cachelayer.adapters.routing import RouteMemo, memcached_identity, split_location
from cachelayer.core import conf
from cachelayer.core.backends import check_options
from cachelayer.core.limits import expiry_seconds


class _RawClient(pylibmc.Client):
    """A pylibmc client that never unpickles.

    pylibmc unpickles any value whose memcached flags say "pickled" inside
    ``get``, before cachelayer's payload check (core/signing.py) could refuse
    it; a value planted in memcached with that flag would run code. cachelayer
    stores bytes and integers only: a pickled value comes back as its bytes,
    and fails the check like any other forged payload.
    """

    def deserialize(self, value, flags):
        # libmemcached calls this for every value a get returns (four a hit): plain
        # bytes (flags 0, every payload) come back as they are, with no further call.
        if not flags or flags & _FLAG_PICKLE:
            return value
        return _native_deserialize(self, value, flags)


_FLAG_PICKLE = 1  # pylibmc's (and python-memcached's) flag for a pickled value
_native_deserialize = pylibmc.Client.deserialize  # the C one: integers (the counters)


class PyLibMCAdapter(Adapter):
    failures = (pylibmc.Error, OSError, socket.timeout)
    # memcached's default item size limit (-I 1m) less room for the key and item header
    default_max_item_size = 1024 * 1024 - 512

    def __init__(self, alias: str, params: dict):
        check_options(alias, params)
        options = dict(params.get("OPTIONS") or {})
        servers = split_location(params.get("LOCATION", "127.0.0.1:11211"))
        super().__init__(alias, params, servers)
        timeout_ms = max(1, int(conf.get("SOCKET_TIMEOUT") * 1000))
        # SASL needs the binary protocol: libmemcached turns it on with a username too
        self._credentials = {name: options.pop(name) for name in ("username", "password") if name in options}
        self._binary = bool(options.pop("binary", False))
        self._behaviors = {
            "tcp_nodelay": True,
            "cas": True,  # gets/cas for compare_and_set
            "connect_timeout": timeout_ms,
            "send_timeout": timeout_ms * 1000,  # microseconds
            "receive_timeout": timeout_ms * 1000,
            "_poll_timeout": timeout_ms,
            **options.pop("behaviors", {}),
        }
        self.masters = {server: self._new_master(server) for server in servers}
        self.free: dict[str, list[Any]] = {
            server: [] for server in servers
        }  # idle clones, each with its own connection
        self._routes = RouteMemo(servers)
        self._threads = ThreadPoolExecutor(len(servers), "cachelayer-pylibmc") if len(servers) > 1 else None

    def _new_master(self, server: str) -> pylibmc.Client:
        return _RawClient([server], binary=self._binary, behaviors=self._behaviors, **self._credentials)

    @contextmanager
    def _client(self, server: str):
        """Borrow an idle client of ``server``; a failed one is dropped, not returned."""
        free = self.free[server]
        try:
            client = free.pop()
        except IndexError:
            client = self.masters[server].clone()
        yield client
        free.append(client)

    def server_of(self, route: Route) -> str:
        if route is None or len(self.servers) == 1:
            return self.servers[0]
        return self._routes.server_of(route)

    def _get_many(self, server, keys):
        free = self.free[server]  # _client() inline: the hit path
        try:
            client = free.pop()
        except IndexError:
            client = self.masters[server].clone()
        found = client.get_multi(keys)
        if not found:
            # libmemcached answers a multi-get on a connection the server closed
            # with nothing at all, as if no key existed; a second request
            # reconnects, and raises when the server is gone.
            found = client.get_multi(keys)
        free.append(client)
        return found

    def _get_many_servers(self, wanted):
        if self._threads is None or len(wanted) == 1:
            return super()._get_many_servers(wanted)
        futures = {server: self._threads.submit(self._get_many, server, keys) for server, keys in wanted.items()}
        results = {}
        for server, future in futures.items():
            try:
                results[server] = future.result()
            except self.failures as exc:
                results[server] = exc
        return results

    def _set_many(self, server, mapping, timeout):
        with self._client(server) as client:
            failed = client.set_multi(mapping, time=expiry_seconds(timeout))
        if failed:
            raise pylibmc.Error(f"not stored: {failed[:3]!r}")

    def _add(self, server, key, value, timeout):
        with self._client(server) as client:
            return client.add(key, value, time=expiry_seconds(timeout))

    def _delete_many(self, server, keys):
        with self._client(server) as client:
            client.delete_multi(keys)

    def _invalidate(self, server, counters, payloads, read):
        # libmemcached has no per-command noreply: one request per counter, on one connection.
        with self._client(server) as client:
            if payloads:
                client.delete_multi(payloads)
            for key in counters:
                try:
                    client.incr(key, 1)
                except pylibmc.NotFound:
                    pass  # nothing to outdate; counters are never created here
            return client.get_multi(read) if read else {}

    def _compare_and_set(self, server, key, expected, new, timeout):
        with self._client(server) as client:
            value, token = client.gets(key)
            if value is None or value != expected:
                return False
            return client.cas(key, new, token, time=expiry_seconds(timeout))

    def _add_counts(self, server, counts):
        with self._client(server) as client:
            for key, amount in counts.items():
                try:
                    client.incr(key, amount)
                except pylibmc.NotFound:
                    if not client.add(key, amount):
                        client.incr(key, amount)  # another process added it first

    def _drop_connections(self, server):
        self.masters[server], stale = self._new_master(server), self.free[server]
        self.free[server] = []
        for client in stale:
            client.disconnect_all()

    def _ping(self, server):
        with self._client(server) as client:
            if not client.get_stats():
                raise pylibmc.Error(f"{server} does not answer")

    def _identity(self, stats):
        return memcached_identity(stats)

    def _stats(self, server):
        with self._client(server) as client:
            return {name: value for _, values in client.get_stats() for name, value in values.items()}

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False)
        for server in self.servers:
            for client in self.free[server]:
                client.disconnect_all()
            self.masters[server].disconnect_all()
