"""A PostgreSQL 15 of the WAL follower tests' own, with ``wal_level=logical``, on a free loopback port.

The shared PostgreSQL runs with ``wal_level=replica`` and must stay as it is,
so the tests that follow the WAL initdb a cluster under test-output/ and start
their own ``postgres`` once per session (tests/conftest.py), as the postgres
OS user (postgres refuses to run as root), and stop it by its pid.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

USER = "cachelayer"  # LOGIN CREATEDB REPLICATION: what a follower's role needs, and no more
PLAIN_USER = "noreplication"  # LOGIN CREATEDB, no REPLICATION attribute
START_TIMEOUT = 60  # seconds for postgres to accept connections
STOP_TIMEOUT = 30
BIN = Path("/usr/lib/postgresql/15/bin")


def _owner() -> dict:
    """Run as the postgres OS user when root (postgres refuses to run as root)."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


class PrivatePostgres:
    """One postgres child process with wal_level=logical and wal2json allowed as an output plugin."""

    def __init__(self, root: Path, port: int):
        self.root, self.port = root, port
        self.datadir = root / "data"
        self.process: subprocess.Popen | None = None

    def install(self) -> PrivatePostgres:
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            [str(BIN / "initdb"), "-D", str(self.datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            timeout=120,
            cwd=self.root,
            **_owner(),
        )
        return self

    @property
    def command(self) -> list[str]:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            "wal_level": "logical",
            "max_replication_slots": "8",
            "max_wal_senders": "8",
            # This image's PostgreSQL build only lets the plugins listed here decode (upstream has no such setting).
            **({"output_plugin_libraries": "pgoutput,test_decoding,wal2json"} if self._restricts_plugins() else {}),
            # No fsync (a test cluster), but synchronous_commit stays on: decoding reads only flushed
            # WAL, and an asynchronous commit waits up to wal_writer_delay (200 ms) to be flushed.
            "fsync": "off",
            "full_page_writes": "off",
            "shared_buffers": "32MB",
        }
        return [str(BIN / "postgres"), "-D", str(self.datadir), *(f"-c{k}={v}" for k, v in settings.items())]

    def _restricts_plugins(self) -> bool:
        done = subprocess.run(
            [str(BIN / "postgres"), "--describe-config"], capture_output=True, text=True, timeout=30, **_owner()
        )
        return any(line.startswith("output_plugin_libraries\t") for line in done.stdout.splitlines())

    def start(self) -> PrivatePostgres:
        with open(self.root / "postgres.log", "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(self.command, stdout=log, stderr=log, cwd=self.root, **_owner())
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            if self.psql("SELECT 1", check=False).returncode == 0:
                for statement in (
                    f"CREATE ROLE {USER} LOGIN CREATEDB REPLICATION PASSWORD '{USER}'",
                    f"CREATE ROLE {PLAIN_USER} LOGIN CREATEDB PASSWORD '{USER}'",
                    f"CREATE DATABASE {USER} OWNER {USER}",
                ):
                    self.psql(statement, check=False)  # (after a restart they exist)
                return self
            time.sleep(0.1)
        text = (self.root / "postgres.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"postgres did not start on port {self.port}:\n{text}")

    def stop(self) -> None:
        """Fast shutdown (SIGINT) by pid, killing it if it takes too long."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)

    def psql(self, statement: str, database: str = "postgres", user: str = "postgres", check: bool = True):
        """Run statements with ``psql`` (as a person at the console would)."""
        return subprocess.run(
            [
                "psql",
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                user,
                "-d",
                database,
                "-c",
                statement,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )
