"""Each combination talks to a real server: prove it with raw clients."""

import sqlite3

import MySQLdb
import psycopg
import pymemcache
import redis
from django.conf import settings
from django.core.cache import caches
from django.db import connection

from tests.testapp.models import Item


def test_cache_connection_is_real(backend):
    cache = caches[backend]
    cache.set("smoke", "through-django", 30)
    key = cache.make_key("smoke")
    location = settings.CACHES[backend]["LOCATION"]
    if backend == "memcached":
        host, port = location[0].split(":")
        raw = pymemcache.Client((host, int(port)), serde=pymemcache.serde.pickle_serde)
        assert raw.get(key) == "through-django"
    elif backend == "redis":
        raw = redis.Redis.from_url(location)
        assert raw.exists(key) == 1 and b"through-django" in raw.get(key)
    else:
        assert cache._cache[key]  # LocMemCache's own dict holds the pickled value
    cache.delete("smoke")


def test_database_connection_is_real(backend):
    Item.objects.create(value=41, text="smoke")
    params = connection.settings_dict
    if connection.vendor == "mysql":
        raw = MySQLdb.connect(
            host=params["HOST"],
            port=int(params["PORT"]),
            user=params["USER"],
            password=params["PASSWORD"],
            database=params["NAME"],
        )
    elif connection.vendor == "postgresql":
        raw = psycopg.connect(
            host=params["HOST"],
            port=int(params["PORT"]),
            user=params["USER"],
            password=params["PASSWORD"],
            dbname=params["NAME"],
        )
    else:
        raw = sqlite3.connect(params["NAME"])
    cursor = raw.cursor()
    cursor.execute("SELECT value, text FROM testapp_item")
    assert cursor.fetchall() in (((41, "smoke"),), [(41, "smoke")])
    raw.close()
