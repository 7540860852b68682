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
from pathlib import Path

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"  # reports, and the data of servers that keep some


def stop(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGSTOP ``process`` and return once every one of its threads is stopped.

    kill() returns before the stop takes effect: a thread that is running then
    stops only at its next exit from the kernel. Measured here, a memcached sent
    a ``get`` right after kill(SIGSTOP) answered it 281 times out of 300, and a
    test that froze its cache then saw a reply it expected never to come.
    """
    process.send_signal(signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    tasks = Path(f"/proc/{process.pid}/task")
    while not all(_stopped(task) for task in tasks.iterdir()):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"process {process.pid} did not stop within {timeout} s of SIGSTOP")
        time.sleep(0.001)


def _stopped(task: Path) -> bool:
    """Return whether a thread (``/proc/PID/task/TID``) is stopped (state T, or t when traced)."""
    try:
        stat = (task / "stat").read_text()
    except FileNotFoundError:
        return True  # it exited
    return stat.rpartition(")")[2].split()[0] in ("T", "t")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on ``port``: a connection that
    succeeds may reach another run's server that took the same free port first (the
    runs of the test command go side by side), and freezing ours would then freeze nothing."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    sockets.add(f"socket:[{inode}]")
    try:
        return any(os.readlink(fd) in sockets for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # it exited meanwhile
        return False


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
        self.port_is_ours = port is None  # another may be chosen when someone takes this one first
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
        if self.kind == "sentinel":  # args: its configuration file (written by the test), which must come first
            return [shutil.which("redis-server"), *self.args, "--sentinel"]
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
            "--repl-diskless-sync-delay",  # a replica syncs at once (the default waits 5 s for more replicas)
            "0",
            "--dir",
            self.data_dir,
            *self.args,
        ]

    @property
    def location(self) -> str:
        return f"127.0.0.1:{self.port}" if self.kind == "memcached" else f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> ServerProcess:
        """Start the server and wait until it listens; on a port another run took first
        (free_port() only found it free), start it again on another free port."""
        for _ in range(5):
            self.process = subprocess.Popen(
                self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.process.poll() is None:
                if listens(self.process.pid, self.port):
                    return self
                time.sleep(0.05)
            if self.process.poll() is None or not self.port_is_ours:
                break  # started but never listened, or a port the test chose
            self.port = free_port()
        self.kill()
        raise RuntimeError(f"{self.kind} did not start on port {self.port}: {' '.join(self.command)}")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a frozen process dies too
            self.process.kill()
            self.process.wait(timeout=10)

    def freeze(self) -> None:
        stop(self.process)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)
