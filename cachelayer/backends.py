"""Django cache backends cachelayer ships, under the names settings use:
``CACHES[alias]["BACKEND"] = "cachelayer.backends.RedisClusterCache"``."""

from cachelayer.adapters.rediscluster import RedisClusterCache

__all__ = ["RedisClusterCache"]
