"""The CACHELAYER settings dict: defaults declared once, read only here.

Values are cached after the first read and reset when Django's
``setting_changed`` signal names CACHELAYER (tests, override_settings):
receivers.settings_changed calls ``reset()`` before it resets what was built
from them.
"""

from __future__ import annotations

from django.conf import settings as django_settings

DEFAULTS = {
    # The kill switch: False serves every caching read from the database, while
    # every write still invalidates (turning it back on serves nothing stale).
    "ENABLED": True,
    # Cache alias (a key of settings.CACHES) used by containers with no alias.
    "CACHE_ALIAS": "default",
    # Prepended to every key cachelayer writes, so caches can be shared.
    "KEY_PREFIX": "cl",
    # Payload lifetime in seconds when a container's timeout is null; 0 = none.
    "TIMEOUT": 3600,
    # Lifetime of row-version keys; any value is safe (versions restart high).
    "VERSION_TIMEOUT": 7 * 86400,
    # Seconds a miss holds its fill lease; others wait this long at most.
    "LEASE_TIMEOUT": 2.0,
    # Seconds between two looks at the cache while waiting for a lease holder.
    "LEASE_POLL_INTERVAL": 0.005,
    # "pickle" (fast) or "json". Either way payloads carry a MAC checked
    # before they are decoded (core/signing.py): a forged one is a miss.
    "SERIALIZER": "pickle",
    # Secret the payload MACs are keyed from; None = derived from SECRET_KEY.
    "PAYLOAD_KEY": None,
    # Older secrets still accepted on read while a rotation's payloads expire;
    # with PAYLOAD_KEY None, SECRET_KEY_FALLBACKS serve instead.
    "PAYLOAD_KEY_FALLBACKS": [],
    # Socket and connect timeout (s) of cachelayer's own cache connections,
    # used when the CACHES entry sets none (memcached "timeout" /
    # "connect_timeout", django-redis SOCKET_TIMEOUT / SOCKET_CONNECT_TIMEOUT).
    "SOCKET_TIMEOUT": 0.5,
    # Seconds a call waits for a free pooled connection when every one of a
    # server's is busy (more threads than OPTIONS["max_pool_size"], memcached);
    # then the call is a cache failure that the breaker does not count.
    "POOL_TIMEOUT": 0.5,
    # Largest payload stored (bytes); None = the backend's limit (memcached:
    # 1 MiB less 512 bytes of headroom). Larger rows are served uncached.
    "MAX_ITEM_SIZE": None,
    # Outbox rows kept per container (one per undelivered key and server);
    # past it, the container's generation is bumped instead.
    "OUTBOX_LIMIT": 1000,
    # Most keys one request to a cache server carries: larger multi-gets,
    # fills and invalidations are split, so that no single request can stall
    # past the socket timeout and open the breaker for the whole process.
    "CHUNK_KEYS": 1000,
    # Seconds a process's server list (a cache's LOCATION) counts as live after
    # the process last renewed it (every third of this); a process that could
    # not renew trusts none of its cache servers until it did (engine/topology.py).
    "POOL_MEMBERSHIP_TTL": 60.0,
    # Consecutive cache errors that open the circuit breaker.
    "BREAKER_THRESHOLD": 3,
    # Seconds the breaker stays open before the cache is tried again.
    "BREAKER_COOLDOWN": 5.0,
    # Count hits, misses, fills, invalidations and errors per container.
    "STATS": True,
    # Bearer token that lets a scraper (no login) read cachelayer.contrib.prometheus's
    # view; None = logged-in staff users only.
    "METRICS_TOKEN": None,
    # Seconds between two publishes of a process's counters to the cache.
    "STATS_INTERVAL": 5.0,
    # Share (0..1) of the keys each delivery of invalidations outdates that are
    # published to the container's sample ring for cache_monitor; 0 (the default)
    # = off: the write path then costs one settings look-up more (engine/samples.py).
    "MONITOR_SAMPLE_RATE": 0.0,
    # Seconds after a sampled write at which cache_monitor compares the key with the database.
    "MONITOR_DELAYS": [1.0, 5.0, 60.0],
    # Most database queries per second cache_monitor makes; checks past it are skipped (and counted).
    "MONITOR_QUERIES_PER_SECOND": 10.0,
    # Seconds of checks the published share of consistent checks covers (a rolling window).
    "MONITOR_WINDOW": 3600.0,
    # {delay: share}: below this share of consistent checks at that delay, cache_health says degraded.
    "MONITOR_TARGETS": {5.0: 0.999, 60.0: 0.999},
    # QuerySet.update() invalidates row by row up to this many rows, else
    # bumps the container generation.
    "UPDATE_KEYS_LIMIT": 1000,
    # Longest list an index container caches; a longer one is served from the
    # database (its entry holds only the length, so readers skip the lease).
    "INDEX_MAX_ROWS": 1000,
    # Keep hot rows of Redis-backed containers in each process's memory (L1),
    # dropped by a push on cachelayer's pub/sub channel (adapters/nearcache.py).
    "NEAR_CACHE": False,
    # Most rows one process's L1 keeps (per cache), least recently used out first.
    "NEAR_CACHE_MAX_ENTRIES": 10000,
    # Most bytes (encoded payloads, plus ~200 a row) one process's L1 keeps (per cache).
    "NEAR_CACHE_MAX_BYTES": 32 * 1024 * 1024,
    # Longest an L1 row lives (seconds), and never past its container's timeout.
    "NEAR_CACHE_TIMEOUT": 300.0,
    # Seconds the channel may go unproven (a PING unanswered) before L1 is dropped.
    "NEAR_CACHE_MAX_LAG": 1.0,
    # Answer a key read again in the same request (or cachelayer.memo() block) from
    # the first read's result, without a round trip (engine/memo.py).
    "REQUEST_MEMO": False,
    # Create a container for every CachedModelMixin model after migrate.
    "AUTO_CONTAINERS": True,
    # cache_serve's credentials file (memcached -Y format: username:password
    # lines); None = no authentication, allowed on a loopback address only.
    "PROTOCOL_AUTH_FILE": None,
    # {username: {container name or "*": "read" | "write"}}: what an
    # authenticated user may do; a user not named may read and write every
    # exposed container, a user named may do only what is listed.
    "PROTOCOL_ACCESS": {},
    # Models that hold credentials or sessions, by label (besides any model
    # with a field that PROTOCOL_SENSITIVE_FIELDS matches).
    "PROTOCOL_SENSITIVE_MODELS": ["auth.User", "sessions.Session"],
    # Regular expression searched in each field's name and class name.
    "PROTOCOL_SENSITIVE_FIELDS": r"passw|passphrase|secret|token|credential|(api|private|session|auth|access|signing)_?key",
    # {model label: "read" | "write"}: sensitive models that may be exposed
    # anyway (read-only, or with writes); none may be flushed to the database.
    "PROTOCOL_SENSITIVE_ALLOWED": {},
}

_cache: dict | None = None


def get(name: str):
    """Return the effective value of one CACHELAYER setting."""
    global _cache
    if _cache is None:
        _cache = {**DEFAULTS, **getattr(django_settings, "CACHELAYER", {})}
    return _cache[name]


def payload_secrets() -> list:
    """Return the secret payloads are signed with, then those still accepted on read."""
    if get("PAYLOAD_KEY") is None:
        return [django_settings.SECRET_KEY, *getattr(django_settings, "SECRET_KEY_FALLBACKS", [])]
    return [get("PAYLOAD_KEY"), *get("PAYLOAD_KEY_FALLBACKS")]


def user_settings() -> dict:
    """Return the CACHELAYER dict as the user wrote it (for system checks)."""
    return getattr(django_settings, "CACHELAYER", {})


def reset() -> None:
    """Forget the memo: the settings changed (receivers.settings_changed, the one settings reset)."""
    global _cache
    _cache = None
