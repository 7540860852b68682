"""When cache_serve drops a connection that stopped talking: one sweeper, no timer per command.

A client between commands may stay silent ``idle_timeout`` seconds; one
whose command has started must send the rest within ``read_timeout``. An
asyncio timeout around every read costs two timers per command (a heap push
and a cancel each), about a fifth of the event loop's time with 1,000
clients. Instead each connection notes its deadline (a float) and one task
checks them all several times per shortest timeout, answers what the
connection was told to expect (memcached's ``CLIENT_ERROR bad command line
format`` for a stalled line ...) and closes it: a connection is dropped
between its deadline and a quarter of its timeout later.
"""

from __future__ import annotations

import asyncio
import math
import time

SWEEPS_PER_TIMEOUT = 4
MIN_SWEEP = 0.05  # seconds between sweeps at most this often, however short the timeouts


class Deadline:
    """One connection's deadline and the reply it gets when the deadline passes."""

    __slots__ = ("at", "reply")

    def __init__(self):
        self.at, self.reply = math.inf, b""

    def set(self, seconds: float | None, reply: bytes = b"") -> None:
        """Drop the connection (answering ``reply``) unless it moves on within ``seconds`` (None: never)."""
        self.at, self.reply = (time.monotonic() + seconds if seconds else math.inf), reply

    def clear(self) -> None:
        self.at = math.inf


class Deadlines:
    """The deadlines of a server's open connections, enforced by one sweeping task."""

    def __init__(self, *timeouts: float | None):
        shortest = min((timeout for timeout in timeouts if timeout), default=None)
        self._period = None if shortest is None else max(MIN_SWEEP, shortest / SWEEPS_PER_TIMEOUT)
        self._open: dict[asyncio.StreamWriter, Deadline] = {}
        self._task: asyncio.Task | None = None

    def add(self, writer: asyncio.StreamWriter) -> Deadline:
        self._open[writer] = deadline = Deadline()
        return deadline

    def discard(self, writer: asyncio.StreamWriter) -> None:
        self._open.pop(writer, None)

    def writers(self) -> list[asyncio.StreamWriter]:
        return list(self._open)

    def start(self) -> None:
        if self._period is not None:
            self._task = asyncio.get_running_loop().create_task(self._sweep())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _sweep(self) -> None:
        assert self._period is not None  # start() runs the sweep only with a period
        while True:
            await asyncio.sleep(self._period)
            now = time.monotonic()
            for writer, deadline in list(self._open.items()):
                if deadline.at <= now:
                    deadline.clear()
                    writer.write(deadline.reply)
                    writer.close()  # the handler's pending read ends (end of stream)
