"""Redis Cluster: a Django cache backend and cachelayer's adapter, both on redis-py's ``RedisCluster``.

Key layout. The adapter's "servers" are ``SHARDS`` hash tags (``{cl0}``,
``{cl1}``, ...), chosen so that their slots are spread evenly over the 16384
slots (so over the masters of a cluster made with ``--cluster create``). The
adapter puts a route's tag in front of every key it sends, so all keys one row
read needs (``p:cfg``, ``p:g:c``, ``p:v:c:k``, ``p:d:c:k``, the lease) share a
slot: one MGET, one node. Keys shared by a container exist once per tag, as
they exist once per server in a memcached pool: a flush bumps ``SHARDS``
generations, pipelined per node (O(nodes) round trips, not O(keys)), and
``p:srv`` records, per tag, the master process that owns its slot.

Freshness across a failover. The identity of a tag is the node that owns its
slot and that node's ``run_id``/``master_replid``. redis-py follows ``MOVED``
silently and updates its slot table; after every call the adapter compares
the owner of each tag it touched with the owner it verified, and a change
(a failover, a resharding) is a failure of that tag: its answer is dropped,
the tag is dirty, and the outbox's replay re-verifies it (outdating the new
owner's generations) before it is read again. Retries are off (redis-py's
cluster client retries on its own otherwise), so a killed master is a
failure of the call, never a silent read of a promoted replica.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import parse_url
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import MaxConnectionsError, RedisClusterException, RedisError
from redis.retry import Retry

from cachelayer.adapters.base import Adapter
from cachelayer.adapters.redis import COMPARE_AND_SET, INCR_EXISTING, milliseconds
from cachelayer.adapters.routing import RouteMemo
from cachelayer.core import conf

SHARDS = 16  # hash tags: more than a cluster has masters, so each master holds several


def _tags(count: int) -> list[str]:
    """Return ``count`` hash tags whose slots fall in ``count`` equal ranges of the slot space."""
    width, tags, n = REDIS_CLUSTER_HASH_SLOTS // count, [], 0
    for shard in range(count):
        while key_slot(f"cl{n}".encode()) // width != shard:
            n += 1
        tags.append(f"{{cl{n}}}")
        n = 0
    return tags


TAGS = _tags(SHARDS)


def make_cluster(location, options: dict) -> RedisCluster:
    """Build a ``RedisCluster`` from a CACHES LOCATION (startup node URLs) and OPTIONS."""
    urls = location.replace(";", ",").split(",") if isinstance(location, str) else list(location)
    urls = [url.strip() for url in urls if url.strip()]
    nodes = []
    for url in urls[1:]:
        parsed = parse_url(url)
        nodes.append(ClusterNode(parsed.get("host", "127.0.0.1"), parsed.get("port", 6379)))
    return RedisCluster(url=urls[0], startup_nodes=nodes, **options)


class OwnerMoved(RedisError):
    """A tag's slot is owned by another node than the one its counters were verified on."""


class RedisClusterCacheClient(RedisCacheClient):
    """Django's Redis client over one ``RedisCluster``: multi-key commands split by slot."""

    _serializer: Any  # Django's RedisSerializer (set by RedisCacheClient)

    def __init__(self, servers, serializer=None, pool_class=None, parser_class=None, **options):
        super().__init__(servers, serializer=serializer)
        self._cluster = make_cluster(servers, options)

    def get_client(self, key=None, *, write=False):
        return self._cluster

    def get_many(self, keys):
        values = self._cluster.mget_nonatomic(keys)
        return {k: self._serializer.loads(v) for k, v in zip(keys, values) if v is not None}

    def set_many(self, data, timeout):
        pipe = self._cluster.pipeline()
        for key, value in data.items():
            pipe.set(key, self._serializer.dumps(value), ex=timeout)
        pipe.execute()


class RedisClusterCache(RedisCache):
    """Django's ``RedisCache`` on a Redis Cluster (LOCATION: startup node URLs)."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisClusterCacheClient


class RedisClusterAdapter(Adapter):
    failures = (RedisError, RedisClusterException, OSError)
    congestion = (MaxConnectionsError,)

    def __init__(self, alias: str, params: dict):
        super().__init__(alias, params, list(TAGS))
        timeout = conf.get("SOCKET_TIMEOUT")
        options = {"socket_timeout": timeout, "socket_connect_timeout": timeout, **params.get("OPTIONS", {})}
        for django_only in ("serializer", "pool_class", "parser_class"):
            options.pop(django_only, None)
        self.client = make_cluster(params["LOCATION"], {**options, "retry": Retry(NoBackoff(), 0)})
        self._routes = RouteMemo(self.servers)
        self._slots = {tag: key_slot(tag.encode()) for tag in self.servers}
        self._verified: dict[str, str] = {}  # tag -> the node its counters were verified on
        self._cas = self.client.register_script(COMPARE_AND_SET)

    def server_of(self, route):
        return self.servers[0] if route is None else self._routes.server_of(route)

    def trips_to(self, servers) -> int:
        """One round trip per node: a cluster pipeline sends the MGETs of the tags one node owns together."""
        return len({self._owner(tag) for tag in servers})

    def _owner(self, tag: str) -> str:
        return self.client.nodes_manager.get_node_from_slot(self._slots[tag]).name

    def _same_owner(self, tags) -> None:
        """Raise OwnerMoved when a tag's slot changed owner since it was verified (a MOVED was followed)."""
        for tag in tags:
            verified = self._verified.get(tag)
            if verified is not None and self._owner(tag) != verified:
                raise OwnerMoved(f"slot {self._slots[tag]} ({tag}) moved from {verified} to {self._owner(tag)}")

    def _pipelined(self, tag: str, commands) -> list:
        """Run ``commands`` (argument tuples, keys already tagged) on the tag's node, in one round trip."""
        if len(commands) == 1:  # no pipeline object: it costs more than the command (a pk hit)
            replies = [self.client.execute_command(*commands[0])]
        else:
            pipe = self.client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            replies = pipe.execute()
        self._same_owner([tag])
        return replies

    def _get_many(self, server, keys):
        (values,) = self._pipelined(server, [("MGET", *[server + key for key in keys])])
        return {key: value for key, value in zip(keys, values) if value is not None}

    def _get_many_servers(self, wanted):
        """One MGET per tag in one cluster pipeline: every node is written to before any is read."""
        tags = list(wanted)
        if len(tags) == 1:  # one row read
            return super()._get_many_servers(wanted)
        pipe = self.client.pipeline(transaction=False)
        for tag in tags:
            pipe.execute_command("MGET", *[tag + key for key in wanted[tag]])
        try:
            replies = pipe.execute(raise_on_error=False)
        except self.failures as exc:
            return dict.fromkeys(tags, exc)
        results: dict[str, Any] = {}
        for tag, reply in zip(tags, replies):
            try:
                if isinstance(reply, BaseException):
                    raise reply
                self._same_owner([tag])
            except self.failures as exc:
                results[tag] = exc
                continue
            results[tag] = {key: value for key, value in zip(wanted[tag], reply) if value is not None}
        return results

    def _set_many(self, server, mapping, timeout):
        px = milliseconds(timeout)
        self._pipelined(
            server,
            [("SET", server + key, value, *(("PX", px) if px else ())) for key, value in mapping.items()],
        )

    def _add(self, server, key, value, timeout):
        px = milliseconds(timeout)
        (stored,) = self._pipelined(server, [("SET", server + key, value, "NX", *(("PX", px) if px else ()))])
        return bool(stored)

    def _delete_many(self, server, keys):
        if keys:
            self._pipelined(server, [("DEL", *[server + key for key in keys])])

    def _invalidate(self, server, counters, payloads, read):
        commands: list[tuple] = [("EVAL", INCR_EXISTING, len(counters), *[server + key for key in counters])]
        if payloads:
            commands.append(("DEL", *[server + key for key in payloads]))
        if read:
            commands.append(("MGET", *[server + key for key in read]))
        replies = self._pipelined(server, commands)
        return {key: value for key, value in zip(read, replies[-1]) if value is not None} if read else {}

    def _compare_and_set(self, server, key, expected, new, timeout):
        stored = self._cas(keys=[server + key], args=[expected, new, milliseconds(timeout) or 0])
        self._same_owner([server])
        return stored

    def _add_counts(self, server, counts):
        self._pipelined(server, [("INCRBY", server + key, amount) for key, amount in counts.items()])

    def _drop_connections(self, server):
        """Read the slot map again now: a tag that failed may have a new owner (a failover), and
        the re-verification that follows must ask it. redis-py 8 runs the refresh an error asks
        for only with a later cluster command, at most once a second; ``_stats`` sends none."""
        try:
            self.client.nodes_manager.initialize()
        except self.failures:
            pass  # no node answers: the breaker and the outbox's replay try again

    def _ping(self, server):
        self.client.get_redis_connection(self.client.nodes_manager.get_node_from_slot(self._slots[server])).ping()

    def _stats(self, server):
        node = self.client.nodes_manager.get_node_from_slot(self._slots[server])
        stats = self.client.get_redis_connection(node).info()
        self._verified[server] = node.name  # what _identity is about to record in p:srv
        return {**stats, "node": node.name}

    def _identity(self, stats):
        # the owner of the slot (a failover or a resharding moves it), then, as on
        # a single server, run_id (a restart) and master_replid (a promoted replica)
        return f"{stats['node']}:{stats['run_id']}:{stats.get('master_replid', '')}"

    def close(self) -> None:
        self.client.close()
