"""The cache backends cachelayer supports: Django's backend path -> cachelayer's adapter.

Pure data, so that mapping validation and system checks can name them
without importing a cache client.
"""

ADAPTERS = {
    "django.core.cache.backends.memcached.PyMemcacheCache": "cachelayer.adapters.memcached.MemcachedAdapter",
    "django.core.cache.backends.memcached.PyLibMCCache": "cachelayer.adapters.pylibmc.PyLibMCAdapter",
    "django_redis.cache.RedisCache": "cachelayer.adapters.redis.RedisAdapter",
    "cachelayer.backends.RedisClusterCache": "cachelayer.adapters.rediscluster.RedisClusterAdapter",
    "django.core.cache.backends.locmem.LocMemCache": "cachelayer.adapters.locmem.LocMemAdapter",
}


def supported_backend(backend: str) -> bool:
    return backend in ADAPTERS


# What cachelayer's own clients do with a CACHES entry's OPTIONS, per backend:
# options of the connection are passed to every connection it makes; the others
# configure only Django's client (cachelayer picks servers, retries, fails over
# and serializes on its own) and are left to it. Any other name is refused.
CLIENT_OPTIONS = {
    "django.core.cache.backends.memcached.PyMemcacheCache": {
        "passed": (
            "connect_timeout",
            "timeout",
            "no_delay",
            "max_pool_size",
            "pool_idle_timeout",
            "tls_context",
            "socket_module",
            "socket_keepalive",
        ),
        "django_only": (
            "hasher",
            "serde",
            "serializer",
            "deserializer",
            "key_prefix",
            "retry_attempts",
            "retry_timeout",
            "dead_timeout",
            "use_pooling",
            "ignore_exc",
            "allow_unicode_keys",
            "default_noreply",
            "encoding",
            "lock_generator",
        ),
    },
    "django.core.cache.backends.memcached.PyLibMCCache": {
        "passed": ("binary", "username", "password", "behaviors"),
        "django_only": (),
    },
}


def unknown_options(backend: str, options: dict) -> list[str]:
    """Return the OPTIONS names neither cachelayer's clients nor Django's take (sorted)."""
    known = CLIENT_OPTIONS.get(backend)
    if known is None:
        return []  # not checked here (django-redis reads its own OPTIONS)
    return sorted(set(options) - set(known["passed"]) - set(known["django_only"]))


def options_error(alias: str, backend: str, unknown: list[str]) -> str:
    known = CLIENT_OPTIONS[backend]
    return (
        f"CACHES[{alias!r}]['OPTIONS'] has {', '.join(map(repr, unknown))}, which {backend.rsplit('.', 1)[-1]} "
        f"does not take; cachelayer's connections take {', '.join(known['passed'])}"
        + (f" (and leave {', '.join(known['django_only'])} to Django's client)" if known["django_only"] else "")
    )


def check_options(alias: str, params: dict) -> None:
    """Refuse OPTIONS no client takes (a typo must not silently drop TLS); the checks say so first (E004)."""
    from django.core.exceptions import ImproperlyConfigured

    unknown = unknown_options(params["BACKEND"], params.get("OPTIONS") or {})
    if unknown:
        raise ImproperlyConfigured(options_error(alias, params["BACKEND"], unknown))
