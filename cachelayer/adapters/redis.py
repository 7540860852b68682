"""Adapter for Redis, built from a django-redis CACHES entry.

It keeps its own connection pool, made by django-redis's connection factory
from the same OPTIONS, so that socket timeouts are always set (redis-py
waits forever by default) and no retry multiplies them.

Counters are bumped by a Lua script that never creates a key: Redis INCR
on a missing key would restart it at 1, which could match an old payload.
The same script publishes the names of the counters on cachelayer's channel
(``p:n``), whether this process keeps a near-cache or not, and this
process's own near-cache drops them when the round trip ends
(adapters/nearcache.py); a topology reset of counters publishes them too.

The hot commands (reads, fills, leases, invalidations) go straight to a
connection the adapter keeps in a free list, as one packed write and its
replies: redis-py 8's client and pool wrap every command in retries,
observability records and pool locking (~20 us of CPU a command, a third of
a hit; the 95/5 mix spent ~50 us more CPU per operation on Redis than on
memcached). Connections still come from redis-py's pool factory, with its
options and parser (hiredis), and each is connected through its own class's
``connect()``, as the pool connects them: a ``SentinelConnectionPool``'s
connections ask the Sentinels for the master (django-redis's
``SentinelConnectionFactory``), TLS and ACL users come from the pool's
connection options. A connection that breaks is a failure of the call, never
a silent reconnect: a failover behind it must be seen (engine/topology.py).

The free list follows the thread count: a thread that finds it empty makes
one more connection, and a connection that failed goes back disconnected
(it reconnects on its next command), so the pool's count of connections made
is the most threads that ever used it at once. Past a ``max_connections``
the CACHES entry sets, redis-py raises ``MaxConnectionsError``: a cache
failure for that call that the breaker does not count.
"""

from __future__ import annotations

import os
from typing import Any

from django_redis.pool import get_connection_factory
from redis.backoff import NoBackoff
from redis.exceptions import MaxConnectionsError, RedisError
from redis.retry import Retry

from cachelayer.adapters.base import Adapter, new_counter
from cachelayer.adapters.nearcache import NearCache, Subscriber
from cachelayer.core import conf
from cachelayer.core.keys import config_key, near_channel

# ARGV[1], when given: the near-cache channel, told every counter named (bumped or
# absent: an evicted version still outdates what a near-cache keeps under it).
INCR_EXISTING = """
for i, key in ipairs(KEYS) do
  if redis.call('exists', key) == 1 then redis.call('incr', key) end
end
if ARGV[1] then redis.call('publish', ARGV[1], table.concat(KEYS, ' ')) end
return 0
"""

COMPARE_AND_SET = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  if tonumber(ARGV[3]) > 0 then
    redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3])
  else
    redis.call('set', KEYS[1], ARGV[2])
  end
  return 1
end
return 0
"""


def milliseconds(timeout: float) -> int | None:
    return max(1, int(timeout * 1000)) if timeout else None


def _primary(location) -> str:
    """django-redis writes to the first of its LOCATION URLs."""
    if isinstance(location, str):
        location = location.split(",")
    return location[0].strip()


class RedisAdapter(Adapter):
    failures = (RedisError, OSError)
    congestion = (MaxConnectionsError,)

    def __init__(self, alias: str, params: dict):
        url = _primary(params["LOCATION"])
        super().__init__(alias, params, [url])
        timeout = conf.get("SOCKET_TIMEOUT")
        options = {"SOCKET_TIMEOUT": timeout, "SOCKET_CONNECT_TIMEOUT": timeout, **params.get("OPTIONS", {})}
        factory = get_connection_factory(options)
        pool = factory.get_connection_pool(factory.make_connection_params(url))  # ours alone, not django-redis's
        self.client = factory.redis_client_cls(
            connection_pool=pool, **{"retry": Retry(NoBackoff(), 0), **factory.redis_client_cls_kwargs}
        )
        self._cas = self.client.register_script(COMPARE_AND_SET)
        self._free: list[Any]
        self._free, self._pid = [], os.getpid()  # idle connections of this process
        prefix = conf.get("KEY_PREFIX")
        # Every counter bump is published here, near-cache on or off in this process:
        # processes that keep one hear writers that do not.
        self.channel = near_channel(prefix)
        if conf.get("NEAR_CACHE"):
            self.near = NearCache(
                config_key(prefix),
                conf.get("NEAR_CACHE_MAX_ENTRIES"),
                conf.get("NEAR_CACHE_MAX_BYTES"),
                conf.get("NEAR_CACHE_TIMEOUT"),
                conf.get("NEAR_CACHE_MAX_LAG"),
            )
            self.near.subscriber = Subscriber(self.near, self._subscriber_connection, self.channel)

    def _run(self, *commands):
        """Send ``commands`` (argument tuples) in one write; return their replies.

        A connection that failed, or whose replies were not all read, is
        disconnected before it goes back (its next command reconnects).
        """
        if self._pid != os.getpid():  # forked: the parent's sockets are not ours
            self._free, self._pid = [], os.getpid()
        try:
            connection = self._free.pop()
        except IndexError:
            connection = self.client.connection_pool.make_connection()
        try:
            if connection._sock is None:
                # connect() as the pool would: a Sentinel pool's connection asks the
                # Sentinels for the master here (send_packed_command would dial the
                # LOCATION's host as it is, mymaster:6379)
                connection.connect()
            connection.send_packed_command(connection.pack_commands(commands))
            replies = [connection.read_response() for _ in commands]
        except BaseException:
            connection.disconnect()
            raise
        finally:
            self._free.append(connection)
        return replies

    def _get_many(self, server, keys):
        (values,) = self._run(("MGET", *keys))
        return {key: value for key, value in zip(keys, values) if value is not None}

    def _set_many(self, server, mapping, timeout):
        px = milliseconds(timeout)
        self._run(*[("SET", key, value, "PX", px) if px else ("SET", key, value) for key, value in mapping.items()])

    def _add(self, server, key, value, timeout):
        px = milliseconds(timeout)
        (stored,) = self._run(("SET", key, value, "NX", "PX", px) if px else ("SET", key, value, "NX"))
        return bool(stored)

    def _delete_many(self, server, keys):
        if keys:
            self.client.delete(*keys)

    def _subscriber_connection(self):
        """Return a new connection for the near-cache's subscriber, connected as the pool would."""
        connection = self.client.connection_pool.make_connection()
        connection.connect()
        return connection

    def _invalidate(self, server, counters, payloads, read):
        # EVAL, not the registered script: EVALSHA could answer NOSCRIPT (a
        # restarted server) in the middle of the round trip.
        commands = [("EVAL", INCR_EXISTING, len(counters), *counters, self.channel)] if counters else []
        if payloads:
            commands.append(("DEL", *payloads))
        if read:
            commands.append(("MGET", *read))
        try:
            replies = self._run(*commands) if commands else []
        finally:
            # This process's own entries go now, whatever the round trip did: before the write returns.
            if self.near is not None and counters:
                self.near.drop(counters)
        return {key: value for key, value in zip(read, replies[-1]) if value is not None} if read else {}

    def reset_counters(self, server, keys):
        """Give counters a new base, and tell every near-cache (they may have lost increments)."""
        value = new_counter()
        commands = [*(("SET", key, value) for key in keys), ("PUBLISH", self.channel, " ".join(keys))]
        try:
            self._guarded(server, lambda _server: self._run(*commands))
        finally:
            if self.near is not None:
                self.near.drop(keys)

    def _compare_and_set(self, server, key, expected, new, timeout):
        return self._cas(keys=[key], args=[expected, new, milliseconds(timeout) or 0])

    def _add_counts(self, server, counts):
        pipe = self.client.pipeline(transaction=False)
        for key, amount in counts.items():
            pipe.incrby(key, amount)
        pipe.execute()

    def _drop_connections(self, server):
        stale, self._free = self._free, []
        for connection in stale:
            connection.disconnect()
        self._free.extend(stale)  # kept, disconnected: new ones would count against max_connections
        self.client.connection_pool.disconnect(inuse_connections=False)

    def _ping(self, server):
        self.client.ping()

    def _identity(self, stats):
        # run_id: a new process (a restart, even from an RDB file that lacks the
        # last writes); master_replid: a new history (a promoted replica, a resync)
        return f"{stats['run_id']}:{stats.get('master_replid', '')}"

    def _stats(self, server):
        return self.client.info()

    def close(self) -> None:
        if self.near is not None:
            self.near.close()
        self._drop_connections(None)
        self.client.connection_pool.disconnect()
