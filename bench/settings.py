"""Benchmark settings: the test settings (for the memcached-shaped KeyValue table),
with the cache chosen by CACHELAYER_CACHE as on the demo site, and DEBUG off so
that no query log is kept."""

from demo_project.env import cache_setting
from tests.settings import *  # noqa: F403
from tests.settings import CACHES

DEBUG = False
CACHES = {**CACHES, "default": cache_setting()}
