"""CACHELAYER_DB / CACHELAYER_CACHE parsing."""

import pytest

from demo_project.env import EnvError, cache_from_url, database_from_url


def test_database_urls():
    assert database_from_url("sqlite")["ENGINE"].endswith("sqlite3")
    mysql = database_from_url("mysql://u:p%40ss@db.local:3307/app")
    assert (mysql["USER"], mysql["PASSWORD"], mysql["HOST"], mysql["PORT"], mysql["NAME"]) == (
        "u",
        "p@ss",
        "db.local",
        "3307",
        "app",
    )
    pg = database_from_url("postgresql://u:p@db.local/app")
    assert (pg["ENGINE"], pg["PORT"], pg["TEST"]["NAME"]) == ("django.db.backends.postgresql", "5432", "test_app")


def test_cache_urls():
    assert cache_from_url("locmem")["BACKEND"].endswith("LocMemCache")
    pool = cache_from_url("memcached://127.0.0.1:11211,127.0.0.1:11212")
    assert pool["LOCATION"] == ["127.0.0.1:11211", "127.0.0.1:11212"]
    assert cache_from_url("redis://127.0.0.1:6379/3")["LOCATION"] == "redis://127.0.0.1:6379/3"
    libmc = cache_from_url("pylibmc://127.0.0.1:11211")
    assert (libmc["BACKEND"].endswith("PyLibMCCache"), libmc["LOCATION"]) == (True, ["127.0.0.1:11211"])
    cluster = cache_from_url("redis-cluster://127.0.0.1:7000,127.0.0.1:7001")
    assert cluster == {
        "BACKEND": "cachelayer.backends.RedisClusterCache",
        "LOCATION": ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"],
    }


@pytest.mark.parametrize("url", ["oracle://x/y", "postgresql://host", "mysql://host", "mysql://h:port/db", ""])
def test_bad_database_url_says_what_is_accepted(url):
    with pytest.raises(EnvError, match="CACHELAYER_DB=.*use 'sqlite'"):
        database_from_url(url)


@pytest.mark.parametrize(
    "url", ["memcache://h:1", "memcached://h:x", "redis://h:1/db", "redis://a:1,b:2/0", "redis-cluster://h:1/0", "mem"]
)
def test_bad_cache_url_says_what_is_accepted(url):
    with pytest.raises(EnvError, match="CACHELAYER_CACHE=.*use 'locmem'"):
        cache_from_url(url)
