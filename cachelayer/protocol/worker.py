"""Where a client connection's database work runs, and how its writes commit.

Each connection gets one worker thread: Django's database connections are
per thread, so the connection's batch transaction lives there, and a slow
query stalls only its own client, never the event loop.

Write batching is daemon_memcached_w_batch_size: with ``batch_size`` N > 1
the writes of a connection share one transaction, committed after N writes
or ``commit_interval`` seconds after the first (innodb_api_bk_commit_interval),
whichever comes first, and when the client goes. Invalidations run on commit
(``transaction.on_commit``), so a batch commit delivers them all. Until then
other connections see the old values, as with InnoDB's batches; the writing
connection reads its own writes (written keys bypass the cache).

Each command is a request for Django's database connections: before and
after it, a connection that failed and no longer answers is closed (and its
open batch rolled back), so that the next command reconnects instead of
failing for the rest of the client's life.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import DatabaseError, connections, transaction

logger = logging.getLogger("cachelayer")


class WriteBatch:
    """The open transaction(s) of one worker thread; only that thread calls it."""

    def __init__(self, size: int, interval: float, submit):
        self.size, self.interval = size, interval
        self._submit = submit  # runs a callable on the owning thread
        self._open: dict[str, transaction.Atomic] = {}
        self._pending = 0
        self._timer: threading.Timer | None = None

    def write(self, using: str, call):
        """Run ``call()`` (a write on database ``using``) inside the batch."""
        if self.size <= 1 or connections[using].vendor == "sqlite":
            # Every write is its own transaction (the repository's). SQLite
            # locks the whole file for a writer: an open batch would stall
            # every other writer (the outbox replay included) until it commits.
            return call()
        if using not in self._open:
            block = transaction.atomic(using=using)
            block.__enter__()
            self._open[using] = block
        if self._timer is None:
            self._timer = threading.Timer(self.interval, self._submit, args=(self.commit,))
            self._timer.daemon = True
            self._timer.start()
        try:
            result = call()
        finally:
            self.end_if_broken()
        self._pending += 1
        if self._pending >= self.size:
            self.commit()
        return result

    def end_if_broken(self) -> None:
        """Roll back the batch if the database dropped its transaction or its connection."""
        for using in self._open:
            connection = connections[using]
            if connection.needs_rollback or (connection.errors_occurred and not connection.is_usable()):
                transaction.set_rollback(True, using=using)
                self.commit()  # = roll back: Django sees needs_rollback
                return

    def commit(self) -> None:
        """Commit every open transaction now (their on_commit invalidations run)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending = 0
        while self._open:
            using, block = self._open.popitem()
            try:
                block.__exit__(None, None, None)
            except DatabaseError as exc:
                logger.error("cachelayer: cache_serve batch on %s failed to commit: %s", using, exc)


class Worker:
    """One thread per client connection, with its write batch."""

    def __init__(self, batch_size: int = 1, commit_interval: float = 5.0):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache_serve")
        self.batch = WriteBatch(batch_size, commit_interval, self._submit)

    def _submit(self, call) -> None:
        try:
            self._executor.submit(call)
        except RuntimeError:  # shut down: the final commit already ran
            pass

    async def run(self, call, *args):
        """Run ``call(*args)`` on the worker thread without blocking the event loop."""
        return await asyncio.wrap_future(self._executor.submit(self._request, call, *args))

    def _request(self, call, *args):
        """Run one command between the connection checks Django makes around a request."""
        self._close_unusable()
        try:
            return call(*args)
        finally:
            self._close_unusable()

    def _close_unusable(self) -> None:
        """Close this thread's connections as ``django.db.close_old_connections`` would.

        Django's rule: one that had an error and does not answer a ping, or
        left autocommit off, or outlived CONN_MAX_AGE; the check also makes
        CONN_HEALTH_CHECKS ping before a command's first query. Only a failed
        connection is checked when CONN_MAX_AGE is 0: it then lives as long
        as the client (closing it after every command would reconnect for
        every miss). A connection an open batch holds is the batch's to end.
        """
        self.batch.end_if_broken()
        for connection in connections.all(initialized_only=True):
            if connection.in_atomic_block:
                continue
            if connection.errors_occurred or connection.settings_dict["CONN_MAX_AGE"] != 0:
                connection.close_if_unusable_or_obsolete()

    async def close(self) -> None:
        """Commit the open batch, close this thread's database connections, stop."""
        try:
            await self.run(self._finish)
        finally:
            self._executor.shutdown(wait=False)

    def _finish(self) -> None:
        self.batch.commit()
        connections.close_all()
