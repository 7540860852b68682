"""Delayed ``flush_all <delay>``: one pending flush per container, one thread.

memcached keeps a single flush time: a later ``flush_all`` replaces a pending
one, whether its delay is shorter, longer or zero. So does cache_serve, per
container (``flush_all`` flushes the connection's current container): each
container has at most one deadline, and one thread per server waits for the
earliest, however many clients ask. A thread per request let one client pile
up thousands of sleeping threads.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import DatabaseError, connections

from cachelayer.exceptions import CachelayerError
from cachelayer.repositories import Repository

logger = logging.getLogger("cachelayer")


class DelayedFlushes:
    """The pending delayed flushes of one server, run by one lazily started thread."""

    def __init__(self):
        self._due: dict[str, float] = {}  # container -> time.monotonic() deadline
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def schedule(self, container: str, delay: float) -> None:
        """Flush ``container`` in ``delay`` seconds, replacing its pending flush."""
        with self._changed:
            if self._closed:
                return
            self._due[container] = time.monotonic() + delay
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cache_serve-flush_all", daemon=True)
                self._thread.start()
            self._changed.notify()

    def cancel(self, container: str) -> None:
        """Drop the pending flush of ``container`` (an immediate flush replaces it)."""
        with self._changed:
            self._due.pop(container, None)

    def close(self) -> None:
        """Forget pending flushes (memcached forgets them when it stops) and end the thread."""
        with self._changed:
            self._closed = True
            self._due.clear()
            self._changed.notify()

    def _run(self) -> None:
        while (due := self._wait()) is not None:
            for container in due:
                _flush(container)

    def _wait(self) -> list[str] | None:
        """Return the containers whose deadline passed (waiting for one), or None once closed."""
        with self._changed:
            while not self._closed:
                now = time.monotonic()
                due = [container for container, deadline in self._due.items() if deadline <= now]
                if due:
                    for container in due:
                        del self._due[container]
                    return due
                self._changed.wait(min(self._due.values()) - now if self._due else None)
            return None


def _flush(container: str) -> None:
    """Run one delayed flush_all, then drop this thread's database connections until the next."""
    try:
        Repository(container).flush()
    except (CachelayerError, DatabaseError) as exc:  # the client was answered long ago
        logger.error("cachelayer: delayed flush_all of %s failed: %s", container, exc)
    finally:
        connections.close_all()
