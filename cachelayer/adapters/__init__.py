"""Cache adapters, one per backend family, chosen from a CACHES entry
(registry.py); base.py is the interface every adapter implements.

These modules are the only ones that import pymemcache, pylibmc, redis or django_redis.
"""
