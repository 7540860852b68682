"""Cache servers of the tests' own, on free loopback ports, that tests may
kill, freeze (SIGSTOP) and thaw without disturbing the shared ones."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memcached_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("memcache")
        return ["-u", "memcache"]
    except KeyError:
        return ["-u", "root"]


class ServerProcess:
    """One memcached or redis-server child process on 127.0.0.1:port."""

    def __init__(self, kind: str, port: int | None = None, args: tuple[str, ...] = (), data_dir: str = "/tmp"):
        self.kind, self.port = kind, port or free_port()
        self.args, self.data_dir = list(args), data_dir  # more options; redis-server's --dir
        self.env: dict | None = None  # the server's environment (None: ours)
        self.process: subprocess.Popen | None = None

    @property
    def command(self) -> list[str]:
        if self.kind == "memcached":
            return [
                shutil.which("memcached"),
                *_memcached_user(),
                "-l",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "0",
                "-m",
                "64",
                *self.args,
            ]
        return [
            shutil.which("redis-server"),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.data_dir,
            *self.args,
        ]

    @property
    def location(self) -> str:
        return f"127.0.0.1:{self.port}" if self.kind == "memcached" else f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> ServerProcess:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError(f"{self.kind} did not start on port {self.port}: {' '.join(self.command)}")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a frozen process dies too
            self.process.kill()
            self.process.wait(timeout=10)

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)
