"""Run cachelayer in another process against the test database and the test's settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url(name: str | None = None) -> str:
    """Return a CACHELAYER_DB value naming the test database this process uses (or database ``name`` there)."""
    params = connection.settings_dict
    name = name or params["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{name}"
    return f"{connection.vendor}://{params['USER']}:{params['PASSWORD']}@{params['HOST']}:{params['PORT']}/{name}"


def environment(**cachelayer) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        "CACHELAYER_DB": database_url(),
        "CACHELAYER_TEST_SETTINGS": json.dumps({**settings.CACHELAYER, **cachelayer}),
    }


def manage(*args, stdin: str = "", env: dict | None = None, **cachelayer) -> subprocess.CompletedProcess:
    """Run ``manage.py ARGS`` in a new process (``env`` over the test's environment);
    return its exit code and output."""
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**environment(**cachelayer), **(env or {})},
        timeout=60,
    )


class Worker:
    """A second long-running process that reads through a repository on request."""

    def __init__(self, **cachelayer):
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environment(**cachelayer),
        )

    def get(self, container: str, key: str) -> str:
        """Return what ``repository(container).get(key)`` gives there (or the error's class name)."""
        self.process.stdin.write(f"{container} {key}\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def stop(self) -> int:
        self.process.stdin.close()
        return self.process.wait(timeout=30)
