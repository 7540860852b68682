"""Settings of one benchmark process, chosen by the environment bench/suite.py sets.

BENCH_FLAVOR  which contender the process is: ``plain`` (raw ORM and raw cache),
              ``cachelayer``, ``cacheops`` or ``cachalot``. Each runs alone in
              its process, so no one's signal receivers or monkey patches
              slow down another.
CACHELAYER_DB / CACHELAYER_CACHE   the database and the cache, as URLs
              (demo_project/env.py); BENCH_REDIS is cacheops' own Redis.
"""

import os

from demo_project.env import cache_setting, database_setting

FLAVOR = os.environ.get("BENCH_FLAVOR", "plain")
FLAVORS = ("plain", "cachelayer", "cacheops", "cachalot")
if FLAVOR not in FLAVORS:
    raise ValueError(f"BENCH_FLAVOR={FLAVOR!r}; use one of {FLAVORS}")

SECRET_KEY = "cachelayer-bench"
DEBUG = False  # no query log
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "bench.items"]
INSTALLED_APPS += {
    "plain": [],
    "cachelayer": ["cachelayer", "bench.cacheditems"],
    "cacheops": ["cacheops"],
    "cachalot": ["cachalot"],
}[FLAVOR]

# Persistent connections, as a production site runs: the per-request workload
# then measures what request_finished does to the cache, not a MySQL connect.
DATABASES = {"default": {**database_setting(), "CONN_MAX_AGE": 600}}
CACHES = {"default": cache_setting()}

CACHELAYER = {"AUTO_CONTAINERS": False}  # bench/contenders.py creates its containers

CACHEOPS_REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/1")
CACHEOPS = {
    "items.item": {"ops": (), "timeout": 3600},
    "items.comment": {"ops": (), "timeout": 3600},
}  # ops chosen by .cache() at each call

CACHALOT_CACHE = "default"
CACHALOT_TIMEOUT = 3600
