"""Parse the CACHELAYER_DB and CACHELAYER_CACHE environment variables.

The demo site and the test suite both describe their database and cache as
one URL each, so that switching backends is an environment change, never a
code change. This is the only module that reads those variables.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent

DB_FORMS = (
    "'sqlite', 'sqlite:///PATH', 'mysql://USER[:PASSWORD]@HOST[:PORT]/NAME' "
    "or 'postgresql://USER[:PASSWORD]@HOST[:PORT]/NAME'"
)
# Per URL scheme: Django's backend, the default port, the user when the URL names none.
SERVER_DATABASES = {
    "mysql": ("django.db.backends.mysql", 3306, "root"),
    "mariadb": ("django.db.backends.mysql", 3306, "root"),
    "postgresql": ("django.db.backends.postgresql", 5432, "postgres"),
    "postgres": ("django.db.backends.postgresql", 5432, "postgres"),
}
CACHE_FORMS = (
    "'locmem', 'memcached://HOST:PORT[,HOST:PORT...]', 'pylibmc://HOST:PORT[,HOST:PORT...]', "
    "'redis://HOST:PORT[/DB]' or 'redis-cluster://HOST:PORT[,HOST:PORT...]'"
)


class EnvError(ValueError):
    """A malformed CACHELAYER_DB / CACHELAYER_CACHE value."""


def database_from_url(url: str) -> dict:
    """Return a Django DATABASES entry for a database URL."""
    url = url.strip()
    if url == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(BASE_DIR / "db.sqlite3")}
    parts = urlsplit(url)
    if parts.scheme == "sqlite" and parts.path:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parts.path}
    if parts.scheme in SERVER_DATABASES and parts.hostname and parts.path.strip("/"):
        engine, default_port, default_user = SERVER_DATABASES[parts.scheme]
        try:
            port = parts.port or default_port
        except ValueError:
            port = None
        if port:
            name = parts.path.strip("/")
            entry = {
                "ENGINE": engine,
                "NAME": name,
                "USER": unquote(parts.username or default_user),
                "PASSWORD": unquote(parts.password or ""),
                "HOST": parts.hostname,
                "PORT": str(port),
                "OPTIONS": {},
                "TEST": {"NAME": "test_" + name},
            }
            if engine.endswith("mysql"):
                entry["OPTIONS"]["charset"] = entry["TEST"]["CHARSET"] = "utf8mb4"
            return entry
    raise EnvError(f"CACHELAYER_DB={url!r} is not understood; use {DB_FORMS}")


def _host_ports(url: str, netloc: str, default_port: int) -> list[str]:
    servers = []
    for server in netloc.split(","):
        host, _, port = server.partition(":")
        port = port or str(default_port)
        if not host or not port.isdigit():
            raise EnvError(f"CACHELAYER_CACHE={url!r} is not understood; use {CACHE_FORMS}")
        servers.append(f"{host}:{port}")
    return servers


def cache_from_url(url: str) -> dict:
    """Return a Django CACHES entry for a cache URL."""
    url = url.strip()
    if url == "locmem":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "cachelayer"}
    scheme, sep, rest = url.partition("://")
    netloc, _, path = rest.partition("/")
    if sep and netloc and scheme == "memcached" and not path:
        return {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": _host_ports(url, netloc, 11211),
            "OPTIONS": {"connect_timeout": 0.5, "timeout": 0.5},
        }
    if sep and netloc and scheme == "pylibmc" and not path:  # memcached through libmemcached
        return {
            "BACKEND": "django.core.cache.backends.memcached.PyLibMCCache",
            "LOCATION": _host_ports(url, netloc, 11211),
        }
    if sep and netloc and scheme == "redis-cluster" and not path:  # startup nodes of a Redis Cluster
        return {
            "BACKEND": "cachelayer.backends.RedisClusterCache",
            "LOCATION": [f"redis://{server}" for server in _host_ports(url, netloc, 6379)],
        }
    if sep and netloc and scheme == "redis" and "," not in netloc:
        db = path.split("?")[0] or "0"
        if db.isdigit():
            (server,) = _host_ports(url, netloc, 6379)
            options = parse_qs(urlsplit(url).query)
            return {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": f"redis://{server}/{db}",
                "OPTIONS": {
                    "SOCKET_CONNECT_TIMEOUT": float(options.get("connect_timeout", ["0.5"])[0]),
                    "SOCKET_TIMEOUT": float(options.get("timeout", ["0.5"])[0]),
                },
            }
    raise EnvError(f"CACHELAYER_CACHE={url!r} is not understood; use {CACHE_FORMS}")


def database_setting() -> dict:
    """Return the DATABASES['default'] entry chosen by CACHELAYER_DB."""
    return database_from_url(os.environ.get("CACHELAYER_DB", "sqlite"))


def cache_setting() -> dict:
    """Return the CACHES['default'] entry chosen by CACHELAYER_CACHE."""
    return cache_from_url(os.environ.get("CACHELAYER_CACHE", "locmem"))
