"""Where cache_serve's database work runs, and how its write batches commit.

Connections live on the event loop and hold nothing but their socket. A
command that may need the database runs on one of a few database workers
(``--db-workers``, a fixed pool): each is one thread with its own Django
database connections, opened on first use and closed when the server stops,
so a thousand clients cost a few threads and a few database connections,
never one of each per client. A slow query stalls its worker's queue, never
the event loop; a command goes to the worker with the fewest queued.

Write batching is daemon_memcached_w_batch_size: with ``batch_size`` N > 1
a client's writes share one transaction on the worker that ran the first,
committed after N writes, ``commit_interval`` seconds after the first (the
worker commits it itself when the client is silent), when the client goes,
or as soon as that worker is needed for another client's command: one
worker's transaction never mixes two clients' writes, and a row a batch
wrote stays locked ``commit_interval`` seconds at most (another writer of
it waits no longer). Invalidations run on commit (``transaction.on_commit``).
Until then other clients see the old values; the writing client's commands
go to its batch's worker and read its own writes (written keys bypass the
cache).

Each command is a request for the worker's database connections: before and
after it, a connection that failed and no longer answers is closed (and its
open batch rolled back), so that the next command reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time

from django.db import DatabaseError, connections, transaction

from cachelayer.core import logfields

logger = logging.getLogger("cachelayer")

STOP = object()  # the last item of a worker's queue
_running = threading.local()  # .worker: the DatabaseWorker whose thread this is


class WriteBatch:
    """The open transaction(s) of one database worker; only its thread calls it."""

    def __init__(self, size: int, interval: float):
        self.size, self.interval = size, interval
        self.owner: Seat | None = None  # the client whose writes the open batch holds
        self._open: dict[str, transaction.Atomic] = {}
        self._pending = 0
        self._deadline: float | None = None  # time.monotonic() at which the open batch commits

    def write(self, owner: Seat, using: str, call):
        """Run ``call()`` (a write of ``owner`` on database ``using``) inside the batch."""
        if self.size <= 1 or connections[using].vendor == "sqlite":
            # Every write is its own transaction (the repository's). SQLite
            # locks the whole file for a writer: an open batch would stall
            # every other writer (the outbox replay included) until it commits.
            return call()
        if using not in self._open:
            block = transaction.atomic(using=using)
            block.__enter__()
            self._open[using] = block
        if self._deadline is None:
            self._deadline = time.monotonic() + self.interval
            self.owner = owner
        try:
            result = call()
        finally:
            self.end_if_broken()
        self._pending += 1
        if self._pending >= self.size:
            self.commit()
        return result

    def remaining(self) -> float | None:
        """Return the seconds until the open batch is due (None: no batch is open)."""
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

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
        if self.owner is not None:
            self.owner.worker = None
        self.owner, self._deadline, self._pending = None, None, 0
        while self._open:
            using, block = self._open.popitem()
            try:
                block.__exit__(None, None, None)
            except DatabaseError as exc:
                logger.error(
                    "cachelayer: cache_serve batch on %s failed to commit: %s", using, exc, extra=logfields.fields()
                )


class DatabaseWorker:
    """One thread that runs commands from a queue, with its connections and write batch."""

    def __init__(self, index: int, batch_size: int, commit_interval: float):
        self.batch = WriteBatch(batch_size, commit_interval)
        self.queued = 0  # commands handed to this worker and not answered yet (event-loop side)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"cache_serve-db-{index}", daemon=True)
        self._started = False

    def submit(self, seat: Seat | None, call, args, done) -> None:
        """Queue ``call(*args)`` for ``seat``; ``done(result, error)`` is called from this thread."""
        if not self._started:
            self._started = True
            self._thread.start()
        self._queue.put((seat, call, args, done))

    def stop(self) -> None:
        if self._started:
            self._queue.put((None, STOP, (), None))

    def join(self, timeout: float) -> None:
        if self._started:
            self._thread.join(timeout)

    def write(self, seat: Seat, using: str, call):
        """Run a write of ``seat`` in this worker's batch; an open batch binds the client here."""
        try:
            return self.batch.write(seat, using, call)
        finally:
            if self.batch.owner is seat:
                seat.worker = self

    def _run(self) -> None:
        _running.worker = self
        while True:
            try:
                item = self._queue.get(timeout=self.batch.remaining())
            except queue.Empty:  # the open batch is due and its client is silent
                self.batch.commit()
                continue
            seat, call, args, done = item
            if call is STOP:
                self.batch.commit()
                connections.close_all()
                return
            if self.batch.owner is not None and (seat is not self.batch.owner or self.batch.remaining() == 0):
                self.batch.commit()  # another client's command waits for this worker, or the batch is due
            try:
                result, error = self._request(call, *args), None
            except BaseException as exc:
                result, error = None, exc
            done(result, error)

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
        as the worker (closing it after every command would reconnect for
        every miss). A connection an open batch holds is the batch's to end.
        """
        self.batch.end_if_broken()
        for connection in connections.all(initialized_only=True):
            if connection.in_atomic_block:
                continue
            if connection.errors_occurred or connection.settings_dict["CONN_MAX_AGE"] != 0:
                connection.close_if_unusable_or_obsolete()


class WorkerPool:
    """The server's database workers; every method but ``join`` runs on the event loop."""

    def __init__(self, size: int = 4, batch_size: int = 1, commit_interval: float = 0.5):
        self.workers = [DatabaseWorker(index, batch_size, commit_interval) for index in range(size)]

    async def run(self, seat: Seat | None, call, *args):
        """Run ``call(*args)`` on a database worker without blocking the event loop.

        A client with an open batch goes to its batch's worker, any other
        command to the worker with the fewest commands queued.
        """
        worker = (
            seat.worker
            if seat is not None and seat.worker is not None
            else min(self.workers, key=lambda worker: (worker.queued, worker.batch.owner is not None))
        )
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def done(result, error):
            loop.call_soon_threadsafe(_settle, future, result, error)

        worker.queued += 1
        try:
            worker.submit(seat, call, args, done)
            return await future
        finally:
            worker.queued -= 1

    def stop(self) -> None:
        """Commit open batches, close every worker's connections, end the threads."""
        for worker in self.workers:
            worker.stop()

    def join(self, timeout: float) -> None:
        for worker in self.workers:
            worker.join(timeout)


def _settle(future: asyncio.Future, result, error) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Seat:
    """One client connection's place at the pool: its session's ``batch``."""

    def __init__(self, pool: WorkerPool):
        self.pool = pool
        self.worker: DatabaseWorker | None = None  # the worker holding this client's open batch

    async def run(self, call, *args):
        """Run one command of this client on the pool."""
        return await self.pool.run(self, call, *args)

    def write(self, using: str, call):
        """Run ``call()`` in the write batch of the worker running this command (its thread)."""
        return _running.worker.write(self, using, call)

    async def close(self) -> None:
        """Commit this client's open batch, if it has one (the client went)."""
        if self.worker is not None:
            await self.run(_commit_own, self)


def _commit_own(seat: Seat) -> None:
    batch = _running.worker.batch
    if batch.owner is seat:
        batch.commit()
