"""The reader thread: the log in, committed transactions out.

Decoding the log is the follower's heaviest work; a thread of its own does
it while the main thread waits on the cache and the database, and the queue
between them makes batches grow by themselves under load (one cache round
trip for many transactions) while a lone write is handed over at once. Only
committed transactions reach either log (InnoDB logs a transaction at commit,
logical decoding decodes a transaction at its commit record), so every
transaction read is delivered and a rollback yields nothing.
"""

from __future__ import annotations

import queue
import threading

from cachelayer.tasks.follow.position import Position
from cachelayer.tasks.follow.tables import LoggedChanges

QUEUE_LIMIT = 10_000  # transactions decoded ahead of delivery (the reader waits beyond)
PUT_WAIT = 0.5  # seconds between two looks at the stop flag while the queue is full


class Transaction:
    """A committed transaction: what it outdates and where it ends."""

    __slots__ = ("changes", "end")

    def __init__(self, changes: LoggedChanges, end: Position):
        self.changes, self.end = changes, end


class End:
    """The stream reached the end of the log (non-blocking mode)."""


class Failed:
    """The stream stopped on an error."""

    def __init__(self, error: Exception):
        self.error = error


class Stream:
    """Read in a daemon thread, putting Transactions (then End or Failed) on ``queue``."""

    thread_name = "cachelayer-follow"
    stop_timeout = 10.0  # seconds ``stop`` waits for the thread

    def __init__(self, tables, *, blocking: bool):
        self.tables, self.blocking = tables, blocking
        self.queue: queue.Queue = queue.Queue(QUEUE_LIMIT)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)

    def start(self) -> Stream:
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the thread (at its next event) and wait for it: a new stream must not
        start before (a replica id, or a slot, serves one reader at a time)."""
        self._stopped.set()
        self._thread.join(timeout=self.stop_timeout)

    def confirm(self, position: Position) -> None:
        """Hear that everything up to ``position`` was delivered (a slot is advanced only then)."""

    def _put(self, item) -> bool:
        while not self._stopped.is_set():
            try:
                self.queue.put(item, timeout=PUT_WAIT)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            self._read()
        except Exception as exc:  # handed to the main thread, which decides
            self._put(Failed(exc))
        else:
            self._put(End())

    def _read(self) -> None:
        raise NotImplementedError
