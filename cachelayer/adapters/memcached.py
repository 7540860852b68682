"""Adapter for memcached, built from a Django PyMemcacheCache CACHES entry.

Django closes its memcached clients on every request_finished, so each
request would pay a new TCP connect; this adapter keeps its own pooled,
long-lived client per server. Servers are chosen by rendezvous hashing of
the route, so the keys of one read share a server and one round trip.

pymemcache's pool raises ``RuntimeError`` for a borrower past its
``max_pool_size`` (more threads than connections): here a borrower waits for
a connection instead, at most ``POOL_TIMEOUT`` seconds, then the call is a
cache failure (the read goes to the database, the invalidation to the outbox).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from pymemcache.client.base import PooledClient
from pymemcache.exceptions import MemcacheError, MemcacheUnexpectedCloseError, MemcacheUnknownError
from pymemcache.pool import ObjectPool

from cachelayer.adapters.base import Adapter, Route
from cachelayer.adapters.pipeline import GetConnections
from cachelayer.adapters.routing import RouteMemo, memcached_identity, split_location
from cachelayer.core import conf
from cachelayer.core.backends import CLIENT_OPTIONS, check_options
from cachelayer.core.limits import expiry_seconds

RECV_SIZE = 64 * 1024
DEFAULT_POOL_SIZE = 64  # connections per server and process, unless OPTIONS["max_pool_size"] says otherwise


class PoolTimeout(Exception):
    """Every pooled connection to a server stayed busy for POOL_TIMEOUT seconds."""


class WaitingPool(ObjectPool):
    """pymemcache's ObjectPool, except that a borrower past ``max_size`` waits
    (up to ``wait`` seconds) for a connection to come back instead of raising."""

    def __init__(self, obj_creator, *, wait: float, **kwargs):
        super().__init__(obj_creator, lock_generator=threading.Condition, **kwargs)
        self.wait, self._waiting = wait, 0

    def _has_room(self) -> bool:
        return bool(self._free_objs) or len(self._used_objs) < self.max_size

    def get(self):
        with self._lock:  # a Condition over an RLock: ObjectPool.get takes it again
            if not self._has_room():
                self._waiting += 1
                try:
                    if not self._lock.wait_for(self._has_room, self.wait):
                        raise PoolTimeout(f"all {self.max_size} connections busy for {self.wait} s")
                finally:
                    self._waiting -= 1
            return super().get()

    def release(self, obj, silent=True) -> None:
        super().release(obj, silent)
        self._wake()

    def destroy(self, obj, silent=True) -> None:
        super().destroy(obj, silent)
        self._wake()

    def _wake(self) -> None:
        if self._waiting:
            with self._lock:
                self._lock.notify()


class WaitingClient(PooledClient):
    """A PooledClient whose pool is a WaitingPool."""

    def __init__(self, server, *, pool_timeout: float, **kwargs):
        super().__init__(server, **kwargs)
        self.client_pool = WaitingPool(
            self._create_client,
            wait=pool_timeout,
            after_remove=lambda client: client.close(),
            max_size=kwargs.get("max_pool_size"),
            idle_timeout=kwargs.get("pool_idle_timeout", 0),
        )


def _get_command(keys: list[str]) -> bytes:
    """``get k1 k2 ...``: keys.py already made every key safe (ASCII, no spaces, <= 250 bytes)."""
    return ("get " + " ".join(keys) + "\r\n").encode()


def _read_values(sock) -> dict[str, bytes]:
    """Read one ``get`` reply (``VALUE key flags bytes`` blocks, then ``END``) off ``sock``.

    pymemcache's reader re-checks every key and splits the reply line by
    line in Python (~2 us a value, ~0.6 here); values here are raw bytes, as
    the adapter's clients store them (no serde, flags unused). Requests go
    out on pymemcache's pooled connections (``client.sock``, connected with
    its ``_connect``), so timeouts and pool limits stay the pool's.
    """
    buf, pos, found = sock.recv(RECV_SIZE), 0, {}
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            buf, pos = buf[pos:] + _recv(sock), 0
            continue
        if buf.startswith(b"VALUE ", pos):
            _, key, _, size = buf[pos:eol].split(b" ", 4)[:4]
            start = eol + 2
            end = start + int(size)
            if len(buf) < end + 2:
                chunks, have = [buf[start:]], len(buf) - start
                while have < end - start + 2:
                    chunk = _recv(sock)
                    chunks.append(chunk)
                    have += len(chunk)
                buf, start = b"".join(chunks), 0
                end = int(size)
            found[key.decode()] = buf[start:end]
            pos = end + 2
        elif eol == pos + 3 and buf.startswith(b"END", pos):
            return found
        else:
            raise MemcacheUnknownError(buf[pos:eol][:64])


def _read_line(sock) -> None:
    """Read the one-line answer of a storage or counter command; raise on an error line."""
    buf = _recv(sock)
    while not buf.endswith(b"\r\n"):
        buf += _recv(sock)
    if buf.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")):
        raise MemcacheUnknownError(buf[:64])


def _recv(sock) -> bytes:
    chunk = sock.recv(RECV_SIZE)
    if not chunk:
        raise MemcacheUnexpectedCloseError()
    return chunk


class MemcachedAdapter(Adapter):
    failures = (MemcacheError, OSError, socket.timeout)
    congestion = (PoolTimeout,)
    # memcached's default item size limit (-I 1m) less room for the key and item header
    default_max_item_size = 1024 * 1024 - 512

    def __init__(self, alias: str, params: dict):
        options = params.get("OPTIONS") or {}
        check_options(alias, params)
        default_timeout = conf.get("SOCKET_TIMEOUT")  # pymemcache's own default waits forever
        servers = split_location(params.get("LOCATION", "127.0.0.1:11211"))
        super().__init__(alias, params, servers)
        passed = {name: options[name] for name in CLIENT_OPTIONS[params["BACKEND"]]["passed"] if name in options}
        self._client_options = {
            "no_delay": True,
            "max_pool_size": DEFAULT_POOL_SIZE,
            **passed,  # tls_context, socket_keepalive ...: every connection gets them
            "connect_timeout": options.get("connect_timeout") or default_timeout,
            "timeout": options.get("timeout") or default_timeout,
            "default_noreply": False,
            "pool_timeout": conf.get("POOL_TIMEOUT"),
        }
        self.clients = {server: WaitingClient(server, **self._client_options) for server in servers}
        self._routes = RouteMemo(servers)
        # cache_serve's event loop sends its multi-gets on connections of its own
        # (pipeline.py); a custom socket module (gevent ...) keeps the threads' pool.
        self._loop_connections = (
            None
            if "socket_module" in passed
            else GetConnections(
                self._client_options["connect_timeout"], self._client_options["timeout"], passed.get("tls_context")
            )
        )

    def server_of(self, route: Route) -> str:
        if route is None or len(self.servers) == 1:
            return self.servers[0]
        return self._routes.server_of(route)

    def _get_many(self, server, keys):
        return self._request(server, _get_command(keys), _read_values)

    def _get_many_servers(self, wanted):
        """Send the ``get`` of every server, then read the answers: the servers
        work in parallel, and a pool costs about one server's round trip."""
        if len(wanted) == 1:
            return super()._get_many_servers(wanted)
        results: dict[str, Any]
        sent, results = [], {}
        try:
            for server, keys in wanted.items():
                pool = self.clients[server].client_pool
                try:
                    client = pool.get()
                except PoolTimeout as exc:
                    results[server] = exc
                    continue
                sent.append((server, pool, client))
                try:
                    if client.sock is None:
                        client._connect()
                    client.sock.sendall(_get_command(keys))
                except self.failures as exc:
                    results[server] = exc
            for server, _, client in sent:
                if server not in results:
                    try:
                        results[server] = _read_values(client.sock)
                    except self.failures as exc:
                        results[server] = exc
        finally:
            for server, pool, client in sent:
                if isinstance(results.get(server), dict):
                    pool.release(client)
                else:
                    client.close()
                    pool.destroy(client)
        return results

    async def _get_many_async(self, wanted):
        """Send every server's ``get`` (CHUNK_KEYS keys a request) as the event loop's I/O."""
        if self._loop_connections is None:
            return await super()._get_many_async(wanted)
        if len(wanted) == 1:  # the usual case: no gather (a task per server)
            ((server, keys),) = wanted.items()
            return {server: await self._get_on_loop(server, keys)}
        answers = await asyncio.gather(*(self._get_on_loop(server, keys) for server, keys in wanted.items()))
        return dict(zip(wanted, answers))

    async def _get_on_loop(self, server: str, keys: list[str]):
        """Return the keys of ``server`` found, or the exception that stopped the read."""
        assert self._loop_connections is not None  # (checked by the caller)
        chunk = conf.get("CHUNK_KEYS")
        try:
            return await self._loop_connections.get(
                server, [_get_command(keys[start : start + chunk]) for start in range(0, len(keys), chunk)]
            )
        except self.failures as exc:
            return exc

    def _set_many(self, server, mapping, timeout):
        self.clients[server].set_many(mapping, expire=expiry_seconds(timeout))

    def _add(self, server, key, value, timeout):
        return self.clients[server].add(key, value, expire=expiry_seconds(timeout))

    def _delete_many(self, server, keys):
        self.clients[server].delete_many(keys)

    def _invalidate(self, server, counters, payloads, read):
        # One round trip, one write: on one connection, every command but the
        # last goes unanswered (noreply), and memcached answers the last only
        # after it ran the others. NOT_FOUND is fine for a counter (nothing to
        # outdate); deleting payloads only frees memory early (the bumped
        # version alone keeps them from being served).
        answered = counters[-1:] if counters and not read else []
        lines = [f"delete {key} noreply\r\n" for key in payloads]
        lines += [f"incr {key} 1 noreply\r\n" for key in counters[: len(counters) - len(answered)]]
        lines += [f"incr {key} 1\r\n" for key in answered]
        if not lines and not read:
            return {}
        request = "".join(lines).encode() + (_get_command(read) if read else b"")
        return self._request(server, request, _read_values if read else (_read_line if answered else None)) or {}

    def _request(self, server, request: bytes, read_reply):
        """Send ``request`` on a pooled connection and return ``read_reply(sock)`` (None: no reply)."""
        pool = self.clients[server].client_pool
        client = pool.get()
        try:
            if client.sock is None:
                client._connect()
            client.sock.sendall(request)
            reply = read_reply(client.sock) if read_reply else None
        except BaseException:
            client.close()  # a half-read reply must never be read by the next caller
            pool.destroy(client)
            raise
        pool.release(client)
        return reply

    def _compare_and_set(self, server, key, expected, new, timeout):
        client = self.clients[server]
        value, token = client.gets(key)
        if value is None or value != expected:
            return False
        return client.cas(key, new, token, expire=expiry_seconds(timeout))

    def _add_counts(self, server, counts):
        client = self.clients[server]
        for key, amount in counts.items():
            if client.incr(key, amount) is None and not client.add(key, amount):
                client.incr(key, amount)  # another process added it first

    def _drop_connections(self, server):
        # A new pool: connections other threads hold keep working (or fail) on their own.
        self.clients[server] = WaitingClient(server, **self._client_options)

    def _ping(self, server):
        self.clients[server].version()

    def _identity(self, stats):
        return memcached_identity(stats)

    def _stats(self, server):
        return {k.decode(): v for k, v in self.clients[server].stats().items()}

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
