"""The cache backends cachelayer supports: Django's backend path -> cachelayer's adapter.

Pure data, so that mapping validation and system checks can name them
without importing a cache client.
"""

ADAPTERS = {
    "django.core.cache.backends.memcached.PyMemcacheCache": "cachelayer.adapters.memcached.MemcachedAdapter",
    "django.core.cache.backends.memcached.PyLibMCCache": "cachelayer.adapters.pylibmc.PyLibMCAdapter",
    "django_redis.cache.RedisCache": "cachelayer.adapters.redis.RedisAdapter",
    "django.core.cache.backends.locmem.LocMemCache": "cachelayer.adapters.locmem.LocMemAdapter",
}


def supported_backend(backend: str) -> bool:
    return backend in ADAPTERS
