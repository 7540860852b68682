"""Fault tests: each test starts cache servers of its own (servers.py) and
points cachelayer at them with short timeouts, so killing or freezing them
costs only that test."""

import json
import uuid

import pytest

from cachelayer.adapters.registry import get_adapter
from tests.faults.servers import OUTPUT, ServerProcess
from tests.testapp.models import Item

SOCKET_TIMEOUT = 0.2
COOLDOWN = 1.0
ALIAS = "faulty"


def write_report(name: str, **data) -> None:
    """Keep a fault test's measurements in test-output/<name>.json (and print them)."""
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / f"{name}.json").write_text(json.dumps(data, indent=1))
    print(name, data)


BACKENDS = {
    "memcached": "django.core.cache.backends.memcached.PyMemcacheCache",
    "pylibmc": "django.core.cache.backends.memcached.PyLibMCCache",
    "redis": "django_redis.cache.RedisCache",
}


@pytest.fixture
def start_servers():
    """``start_servers(kind, count)`` -> running ServerProcess list, killed at teardown."""
    started = []

    def start(kind: str, count: int = 1) -> list[ServerProcess]:
        servers = [ServerProcess(kind) for _ in range(count)]
        started.extend(servers)
        return [server.start() for server in servers]

    yield start
    for server in started:
        server.kill()


@pytest.fixture
def use_servers(settings, transactional_db):
    """``use_servers(servers, client=None, options=None, **CACHELAYER)`` -> the adapter
    cachelayer now reads through (``options``: the CACHES entry's OPTIONS)."""

    def use(servers: list[ServerProcess], client: str | None = None, options: dict | None = None, **overrides):
        kind = client or servers[0].kind  # client: "pylibmc" for memcached servers through pylibmc
        location = [s.location for s in servers] if kind != "redis" else servers[0].location
        entry = {"BACKEND": BACKENDS[kind], "LOCATION": location, **({"OPTIONS": options} if options else {})}
        settings.CACHES = {**settings.CACHES, ALIAS: entry}
        settings.CACHELAYER = {
            "CACHE_ALIAS": ALIAS,
            "KEY_PREFIX": f"f{uuid.uuid4().hex[:12]}",
            "SOCKET_TIMEOUT": SOCKET_TIMEOUT,
            "BREAKER_COOLDOWN": COOLDOWN,
            **overrides,
        }
        Item.cached.get_many([0])  # load definitions, replay the (empty) outbox
        return get_adapter(ALIAS)

    return use
