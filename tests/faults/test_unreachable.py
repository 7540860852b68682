"""A database or a cache that cannot be reached is reported as exactly that
(defect 11 of issue 21): never as "run migrate" or "container does not exist",
never as a raw traceback, and never with exit status 0.

The database is an alias to a loopback port nobody listens on; the cache a
private memcached the test kills.
"""

import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.faults.servers import free_port
from tests.helpers import ROOT, environment
from tests.testapp.models import Item

COMMANDS = [
    ("cache_warm", "testapp_item"),
    ("cache_inspect", "testapp_item"),
    ("cache_get", "1", "--container", "testapp_item"),
    ("cache_stats",),
]


def closed_database() -> dict:
    """The environment of a process whose database is a port nobody listens on."""
    return {**environment(), "CACHELAYER_DB": f"mysql://cachelayer:cachelayer@127.0.0.1:{free_port()}/cl_gone"}


@pytest.mark.caches("memcached", "redis")
def test_a_fresh_process_with_the_database_down_is_told_so_not_to_migrate(backend):
    item = Item.objects.create(value=5)
    Item.cached.get(item.pk)  # cached, in a cache the other process shares
    script = (
        "import django; django.setup()\n"
        "from tests.testapp.models import Item\n"
        f"try: Item.cached.get({item.pk})\n"
        "except Exception as exc: print(type(exc).__name__, '|', exc, '|', isinstance(exc, django.db.OperationalError))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=closed_database(), timeout=60, cwd=ROOT
    )
    name, message, is_operational = done.stdout.strip().split(" | ")
    assert name == "DatabaseUnavailable", done.stdout + done.stderr
    assert message.startswith("database 'default' cannot be reached: (2002") and "migrate" not in message
    assert is_operational == "True"  # handled wherever the database's own errors are


@pytest.mark.slow  # runs manage.py
@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_a_command_with_the_database_down_fails_with_one_line(command):
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *command],
        capture_output=True,
        text=True,
        env=closed_database(),
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("CommandError: database 'default' cannot be reached: (2002"), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_cache_stats_fails_when_the_cache_is_down(start_servers, use_servers):
    (server,) = start_servers("memcached")
    use_servers([server])
    call_command("cache_stats", stdout=StringIO())  # all there: no error
    server.kill()
    out = StringIO()
    with pytest.raises(CommandError, match=rf"cache 'faulty' server {server.location} cannot be reached"):
        call_command("cache_stats", stdout=out)
    assert "error" in out.getvalue()  # what it could not read is printed too


@pytest.mark.slow  # starts a process
def test_a_database_without_cachelayers_tables_still_means_not_migrated(tmp_path):
    script = (
        "import django; django.setup()\n"
        "from django.db import transaction\n"
        "from tests.testapp.models import Item\n"
        "with transaction.atomic():\n"
        "    try: Item.cached.get(1)\n"
        "    except Exception as exc: print(type(exc).__name__, '|', exc)\n"
        "    from django.db import connection\n"
        "    connection.cursor().execute('SELECT 1')  # the transaction is still usable\n"
    )
    env = {**environment(), "CACHELAYER_DB": f"sqlite:///{tmp_path / 'empty.sqlite3'}"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip()
        == "ContainerNotFound | no enabled container maps testapp.Item; run migrate or add one in the admin"
    )
