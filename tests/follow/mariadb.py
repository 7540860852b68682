"""A MariaDB of the follower tests' own, with a row binlog, on a free loopback port.

The shared MariaDB runs without a binlog and must stay as it is, so the
tests that need one install a datadir under test-output/ and start their own
``mariadbd`` once per session (tests/conftest.py), as the ``mysql`` user.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

USER, PASSWORD = "cachelayer", "cachelayer"  # every privilege (and GRANT, for the tests that make users)
PLAIN_USER = "noreplica"  # every privilege on test databases, no REPLICATION grant
START_TIMEOUT = 60  # seconds for mariadbd to accept connections
STOP_TIMEOUT = 30
SERVER_ID = 71

INIT_SQL = f"""
CREATE USER IF NOT EXISTS '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';
GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS '{PLAIN_USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';
GRANT ALL PRIVILEGES ON `test\\_%`.* TO '{PLAIN_USER}'@'127.0.0.1';
"""


def _as_mysql(path: Path) -> list[str]:
    """Give the datadir to the mysql user when running as root (mariadbd refuses to run as root)."""
    if os.geteuid() != 0:
        return []
    shutil.chown(path, "mysql", "mysql")
    return ["--user=mysql"]


class PrivateMariaDB:
    """One mariadbd child process with ``--log-bin --binlog-format=ROW --binlog-row-image=FULL``."""

    def __init__(self, root: Path, port: int):
        self.root, self.port = root, port
        self.datadir = root / "data"
        self.process: subprocess.Popen | None = None

    def install(self) -> PrivateMariaDB:
        shutil.rmtree(self.root, ignore_errors=True)
        self.datadir.mkdir(parents=True)
        user = _as_mysql(self.datadir)
        (self.root / "init.sql").write_text(INIT_SQL)
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.datadir}",
                *user,
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        return self

    @property
    def command(self) -> list[str]:
        data = self.datadir
        return [
            shutil.which("mariadbd") or "/usr/sbin/mariadbd",
            "--no-defaults",
            f"--datadir={data}",
            *(["--user=mysql"] if os.geteuid() == 0 else []),
            "--bind-address=127.0.0.1",
            f"--port={self.port}",
            f"--socket={data}/mysqld.sock",
            f"--pid-file={data}/mysqld.pid",
            f"--log-error={self.root}/error.log",
            f"--init-file={self.root}/init.sql",
            f"--log-bin={data}/binlog",
            "--binlog-format=ROW",
            "--binlog-row-image=FULL",
            f"--server-id={SERVER_ID}",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=64M",
            "--innodb-flush-log-at-trx-commit=2",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
        ]

    def start(self) -> PrivateMariaDB:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                if self.sql("SELECT 1", check=False).returncode == 0:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        log = (
            (self.root / "error.log").read_text(errors="replace")[-2000:] if (self.root / "error.log").exists() else ""
        )
        self.stop()
        raise RuntimeError(f"mariadbd did not start on port {self.port}:\n{log}")

    def stop(self) -> None:
        """Shut down cleanly (SIGTERM), killing it if it takes too long."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def sql(
        self, statement: str, database: str = "", user: str = USER, check: bool = True
    ) -> subprocess.CompletedProcess:
        """Run statements with the ``mariadb`` command-line client (as a person at the console would)."""
        return subprocess.run(
            [
                "mariadb",
                "-h127.0.0.1",
                f"-P{self.port}",
                f"-u{user}",
                f"-p{PASSWORD}",
                "-N",
                "-B",
                *([database] if database else []),
                "-e",
                statement,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )
