"""The demo's async view under a real ASGI server: uvicorn in a process of its
own, on the test database and a private memcached server this test shares.

``await Country.cached.aget`` runs on uvicorn's event loop and thread pool.
A hit is shown to run no SQL by changing the row behind the cache's back
(raw SQL: nothing is invalidated) and still reading the cached value; a
write through the ORM here must then reach the server's next read.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from demo_project.demo.models import Country
from tests.faults.servers import ServerProcess, free_port
from tests.helpers import database_url

pytestmark = pytest.mark.slow  # uvicorn and memcached in processes of their own

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 30  # seconds for uvicorn to answer


@pytest.fixture
def memcached():
    server = ServerProcess("memcached").start()
    yield server
    server.kill()


@pytest.fixture
def site(on_server_database, transactional_db, settings, memcached):
    """The demo under uvicorn; this process reads and writes through the same cache and key prefix."""
    settings.CACHES = {
        **settings.CACHES,
        "shared": {"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache", "LOCATION": memcached.location},
    }
    settings.CACHELAYER = {"CACHE_ALIAS": "shared"}  # the demo's KEY_PREFIX: the default
    call_command("loaddata", "demo", verbosity=0)
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "DJANGO_DEBUG": "0",
        "CACHELAYER_DB": database_url(),
        "CACHELAYER_CACHE": f"memcached://{memcached.location}",
        "PYTHONPATH": str(ROOT),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "demo_project.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while time.monotonic() - started < DEADLINE:
            if server.poll() is not None:
                pytest.fail(f"uvicorn exited: {server.stdout.read()}")
            try:
                urllib.request.urlopen(f"{url}/api/countries/Japan/", timeout=5).read()
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail(f"uvicorn did not answer within {DEADLINE} s")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def get(url: str) -> tuple[int, dict | None]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None


def test_async_view_under_uvicorn_hits_the_cache_and_sees_every_write(site):
    japan = f"{site}/api/countries/Japan/"
    assert get(japan) == (200, {"country": "Japan", "population": 125700000, "area_sq_km": 377975, "drive_side": "L"})
    with connection.cursor() as cursor:  # behind the cache's back: no invalidation
        cursor.execute(f"UPDATE {Country._meta.db_table} SET population = 1 WHERE country = %s", ["Japan"])
    assert get(japan)[1]["population"] == 125700000  # a hit: the server read no row
    Country.objects.filter(country="Japan").update(population=7)  # through Django, in this process
    assert get(japan)[1]["population"] == 7
    Country.objects.filter(country="Japan").delete()
    assert get(japan) == (404, None)
    assert get(f"{site}/api/countries/Atlantis/") == (404, None)
