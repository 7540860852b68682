"""Delayed ``flush_all <delay>``: one pending flush per container, run on the database workers.

memcached keeps a single flush time: a later ``flush_all`` replaces a pending
one, whether its delay is shorter, longer or zero. So does cache_serve, per
container (``flush_all`` flushes the connection's current container): each
container has at most one timer on the event loop, however many clients ask,
and a flush that comes due runs on the server's database workers like any
command. A thread per request let one client pile up thousands of sleeping
threads; a thread of their own cost a database connection opened per flush.
"""

from __future__ import annotations

import asyncio
import logging

from django.db import DatabaseError

from cachelayer.core import logfields
from cachelayer.exceptions import CachelayerError
from cachelayer.protocol.worker import WorkerPool
from cachelayer.repositories import Repository

logger = logging.getLogger("cachelayer")


class DelayedFlushes:
    """The pending delayed flushes of one server; ``schedule``/``cancel`` may be called from any thread."""

    def __init__(self, pool: WorkerPool):
        self._pool = pool
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due: dict[str, asyncio.TimerHandle] = {}  # container -> its pending flush
        self._running: set[asyncio.Task] = set()

    def start(self) -> None:
        """Bind to the running event loop (the server's)."""
        self._loop = asyncio.get_running_loop()

    def schedule(self, container: str, delay: float) -> None:
        """Flush ``container`` in ``delay`` seconds, replacing its pending flush."""
        self._on_loop(container, delay)

    def cancel(self, container: str) -> None:
        """Drop the pending flush of ``container`` (an immediate flush replaces it)."""
        self._on_loop(container, None)

    def close(self) -> None:
        """Forget pending flushes (memcached forgets them when it stops); call on the loop."""
        for timer in self._due.values():
            timer.cancel()
        self._due.clear()
        self._loop = None

    def _on_loop(self, container: str, delay: float | None) -> None:
        loop = self._loop
        if loop is not None:  # else closed: the server is stopping
            loop.call_soon_threadsafe(self._replace, container, delay)

    def _replace(self, container: str, delay: float | None) -> None:
        if self._loop is None:
            return  # closed
        pending = self._due.pop(container, None)
        if pending is not None:
            pending.cancel()
        if delay is not None:
            self._due[container] = self._loop.call_later(delay, self._start, container)

    def _start(self, container: str) -> None:
        del self._due[container]
        assert self._loop is not None  # close() cancels every timer before it forgets the loop
        task = self._loop.create_task(self._pool.run(None, _flush, container))
        self._running.add(task)
        task.add_done_callback(self._running.discard)


def _flush(container: str) -> None:
    """Run one delayed flush_all on a database worker."""
    try:
        Repository(container).flush()
    except (CachelayerError, DatabaseError) as exc:  # the client was answered long ago
        logger.error(
            "cachelayer: delayed flush_all of %s failed: %s",
            container,
            exc,
            extra=logfields.fields(container=container, error=exc),
        )
