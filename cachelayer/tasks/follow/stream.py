"""The reader thread: binlog events in, committed transactions out.

Decoding row events is the follower's heaviest work; a thread of its own
does it while the main thread waits on the cache and the database, and the
queue between them makes batches grow by themselves under load (one cache
round trip for many transactions) while a lone write is handed over at once.
Only committed transactions reach the binlog (InnoDB logs a transaction at
commit, a rollback logs nothing), so every transaction read is delivered.
"""

from __future__ import annotations

import logging
import queue
import threading

from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import GtidEvent, HeartbeatLogEvent, MariadbGtidEvent, QueryEvent, RotateEvent, XidEvent
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from cachelayer.tasks.follow import ddl
from cachelayer.tasks.follow.position import Position
from cachelayer.tasks.follow.tables import Changes, Tables

ROW_EVENTS = (WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent)
# Heartbeats only wake the thread up, so that it sees the stop flag while the binlog is quiet.
EVENTS = [*ROW_EVENTS, XidEvent, QueryEvent, RotateEvent, MariadbGtidEvent, GtidEvent, HeartbeatLogEvent]
QUEUE_LIMIT = 10_000  # transactions decoded ahead of delivery (the reader waits beyond)
PUT_WAIT = 0.5  # seconds between two looks at the stop flag while the queue is full
HEARTBEAT = 1.0  # seconds of silence after which the server sends a heartbeat
READ_TIMEOUT = 10  # seconds without a byte (not even a heartbeat) before reconnecting

logging.getLogger("pymysqlreplication").setLevel(logging.ERROR)  # its metadata warning is the follower's to give, once


class Transaction:
    """A committed transaction: what it outdates and where it ends."""

    __slots__ = ("changes", "end")

    def __init__(self, changes: Changes, end: Position):
        self.changes, self.end = changes, end


class End:
    """The stream reached the end of the binlog (non-blocking mode)."""


class Failed:
    """The stream stopped on an error."""

    def __init__(self, error: Exception):
        self.error = error


class Stream:
    """Read from ``start`` in a daemon thread, putting Transactions (then End or Failed) on ``queue``."""

    def __init__(
        self, settings: dict, server_id: int, start: Position, tables: Tables, *, blocking: bool, freeze: bool
    ):
        self.settings, self.server_id, self.start_at = settings, server_id, start
        self.tables, self.blocking, self.freeze = tables, blocking, freeze
        self.queue: queue.Queue = queue.Queue(QUEUE_LIMIT)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cachelayer-binlog", daemon=True)

    def start(self) -> Stream:
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the thread (at its next event or heartbeat) and wait for it.

        A new stream must not start before: both would register with the same
        server id, and the server drops the older one, which would reconnect.
        """
        self._stopped.set()
        self._thread.join(timeout=READ_TIMEOUT + HEARTBEAT)

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

    def _reader(self) -> BinLogStreamReader:
        return BinLogStreamReader(
            connection_settings={**self.settings, "read_timeout": READ_TIMEOUT},
            server_id=self.server_id,
            resume_stream=True,
            log_file=self.start_at.log_file,
            log_pos=self.start_at.log_pos,
            blocking=self.blocking,
            only_events=EVENTS,
            only_tables=self.tables.names,
            only_schemas=self.tables.schemas,
            freeze_schema=self.freeze,  # safe: a watched table's DDL restarts the stream
            slave_heartbeat=HEARTBEAT if self.blocking else None,
            enable_logging=False,
        )

    def _read(self) -> None:
        reader = self._reader()
        tables, changes, gtid = self.tables, Changes(), self.start_at.gtid
        try:
            for event in reader:
                if self._stopped.is_set():
                    return
                if isinstance(event, HeartbeatLogEvent):
                    continue
                if isinstance(event, ROW_EVENTS):
                    tables.apply(event, changes)
                    continue
                if isinstance(event, (MariadbGtidEvent, GtidEvent)):
                    gtid = str(event.gtid)
                    continue
                if isinstance(event, QueryEvent):
                    query = event.query if isinstance(event.query, str) else event.query.decode(errors="replace")
                    statement = ddl.kind(query)
                    if statement == ddl.FRAMES:
                        continue  # mid-transaction: never a position to resume from
                    if statement == ddl.CHANGES:
                        tables.apply_statement(query, changes)  # DDL: a transaction of its own
                elif not isinstance(event, XidEvent):
                    continue  # RotateEvent: the reader follows it
                end = Position(reader.log_file, reader.log_pos, gtid)
                if not self._put(Transaction(changes, end)):
                    return
                changes = Changes()
        finally:
            reader.close()
