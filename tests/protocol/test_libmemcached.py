"""libmemcached's own tools as real peers: memccapable (ASCII) and memcslap."""

import shutil
import subprocess

import pytest

from tests.protocol.conftest import served_container
from tests.testapp.models import KeyValue

pytestmark = pytest.mark.caches("memcached")


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: scripts/test.sh installs libmemcached-tools")
    return path


@pytest.fixture
def table(backend):
    served_container(
        "default",
        KeyValue,
        "caching",
        key_columns="key",
        value_columns="value",
        flags_column="flags",
        cas_column="cas",
        expire_time_column="expires",
    )


def test_memccapable_ascii(server, table):
    run = subprocess.run(
        [tool("memccapable"), "-a", "-v", "-t", "5", "-h", "127.0.0.1", "-p", str(server.port)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "All tests passed" in run.stdout


@pytest.mark.parametrize("test", ["set", "get", "mget"])
def test_memcslap_bounded_load(server, table, test):
    run = subprocess.run(
        [
            tool("memcslap"),
            f"--servers=127.0.0.1:{server.port}",
            "--concurrency=4",
            "--execute-number=200",
            f"--test={test}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "error" not in output.lower(), output
    assert f"Time to {test}" in output
    assert KeyValue.objects.count() >= 100  # every test loads keys through set: rows in the table
