"""The MySQL/MariaDB source: the row binlog, read as a replica with mysql-replication.

Row events arrive with their table's columns (by name with
``binlog_row_metadata = FULL``, else by position against information_schema);
DDL arrives as statement text (ddl.py) and restarts the stream with a fresh
table map. Lag is measured on the server: the binlog bytes after the stored
position (``SHOW BINARY LOGS``), the transactions after its GTID
(``@@gtid_binlog_pos``, MariaDB), and the age of the oldest event not stored
past (that event's own timestamp, read with a one-event replication request,
against the server's clock).
"""

from __future__ import annotations

import logging
from typing import Any

import pymysql
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import GtidEvent, HeartbeatLogEvent, MariadbGtidEvent, QueryEvent, RotateEvent, XidEvent
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from cachelayer.exceptions import FollowerError
from cachelayer.tasks.follow import ddl
from cachelayer.tasks.follow.aliases import default_server_id, server_of
from cachelayer.tasks.follow.binlogserver import ACCESS_DENIED, READ_TIMEOUT, BinlogServer
from cachelayer.tasks.follow.position import Position, bytes_behind
from cachelayer.tasks.follow.source import Source
from cachelayer.tasks.follow.stream import Stream, Transaction
from cachelayer.tasks.follow.tables import LoggedChanges, Tables

ROW_EVENTS = (WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent)
# Heartbeats only wake the thread up, so that it sees the stop flag while the binlog is quiet.
EVENTS = [*ROW_EVENTS, XidEvent, QueryEvent, RotateEvent, MariadbGtidEvent, GtidEvent, HeartbeatLogEvent]
TIMED_EVENTS = [MariadbGtidEvent, GtidEvent, QueryEvent, XidEvent, *ROW_EVENTS]  # stamped with their write's time
HEARTBEAT = 1.0  # seconds of silence after which the server sends a heartbeat
STREAM_TIMEOUT = 10  # seconds without a byte (not even a heartbeat) before reconnecting
POSITION_LOST = 1236  # ER_MASTER_FATAL_ERROR_READING_BINLOG: the position is not in the binlog
UNKNOWN_VARIABLE = 1193  # ER_UNKNOWN_SYSTEM_VARIABLE: @@gtid_binlog_pos on MySQL

logging.getLogger("pymysqlreplication").setLevel(logging.ERROR)  # its metadata warning is the follower's to give, once


def apply_event(tables: Tables, event, changes: LoggedChanges) -> None:
    """Add the keys (or generations) a row event of a watched table outdates."""
    table = tables.by_key.get((event.schema, event.table))
    if table is None:
        return
    changes.rows += len(event.rows)
    names = [column.name for column in event.columns]
    if None in names and len(names) != len(table.columns):  # no row metadata, and the table changed since
        table.bump(changes)
        return
    columns = table.columns

    def named(values: dict) -> dict:
        return values if None not in names else dict(zip(columns, values.values()))

    deleting = isinstance(event, DeleteRowsEvent)
    for row in event.rows:
        images = (
            [named(row["values"])] if "values" in row else [named(row["before_values"]), named(row["after_values"])]
        )
        table.apply(images, deleting, changes)


class BinlogStream(Stream):
    """Binlog events from ``start`` in, committed transactions out."""

    thread_name = "cachelayer-binlog"
    stop_timeout = STREAM_TIMEOUT + HEARTBEAT

    def __init__(
        self, settings: dict, server_id: int, start: Position, tables: Tables, *, blocking: bool, freeze: bool
    ):
        super().__init__(tables, blocking=blocking)
        self.settings, self.server_id, self.start_at, self.freeze = settings, server_id, start, freeze

    def _reader(self) -> BinLogStreamReader:
        return BinLogStreamReader(
            connection_settings={**self.settings, "read_timeout": STREAM_TIMEOUT},
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
        tables, changes, gtid = self.tables, LoggedChanges(), self.start_at.gtid
        try:
            for event in reader:
                if self._stopped.is_set():
                    return
                if isinstance(event, HeartbeatLogEvent):
                    continue
                if isinstance(event, ROW_EVENTS):
                    apply_event(tables, event, changes)
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
                changes = LoggedChanges()
        finally:
            reader.close()


class BinlogSource(Source):
    """A MySQL/MariaDB server, followed as a replica with ``server_id``."""

    errors = (pymysql.Error, OSError)

    def __init__(self, alias: str, *, server_id: int | None = None, freeze: bool = True):
        self.alias, self.freeze = alias, freeze
        self.server_id = server_id or default_server_id(alias)
        self.server = BinlogServer(alias)
        self.name = self.server.name
        self._here = server_of(alias)

    def preflight(self) -> None:
        self.server.preflight()

    def notes(self) -> list[str]:
        if self.server.row_metadata_full():
            return []
        return [
            f"note: binlog_row_metadata is not FULL on {self.name}: column names come from "
            "information_schema (SET GLOBAL binlog_row_metadata = 'FULL' on MariaDB 10.5+ / MySQL 8)"
        ]

    def follows(self, alias: str) -> bool:
        return server_of(alias) == self._here

    def table_key(self, alias: str, db_table: str) -> tuple[str, str]:
        from django.db import connections

        return (connections.settings[alias]["NAME"], db_table)

    def columns(self, keys):
        return self.server.columns(sorted({schema for schema, _ in keys}))

    def cascades(self, keys):
        return self.server.cascades(sorted({schema for schema, _ in keys}))

    def current(self) -> Position:
        return self.server.current()

    def oldest(self) -> Position:
        return self.server.oldest()

    def unresumable(self, stored: Position) -> str | None:
        if stored.log_file not in {name for name, _ in self.server.binary_logs()}:
            return f"is no longer in the binary logs of {self.name} (purged?)"
        if self.server.logged_at(stored) is False:
            return f"is not where {self.name} logged transaction {stored.gtid} (a failover, or RESET MASTER?)"
        return None

    def stream(self, start: Position, tables, *, blocking: bool) -> Stream:
        return BinlogStream(self.server.settings, self.server_id, start, tables, blocking=blocking, freeze=self.freeze)

    def fatal(self, error: BaseException) -> FollowerError | None:
        if isinstance(error, pymysql.Error) and error.args and error.args[0] in ACCESS_DENIED:
            return self.server.grant_error()
        return None

    def position_lost(self, error: BaseException) -> bool:
        return isinstance(error, pymysql.Error) and bool(error.args) and error.args[0] == POSITION_LOST

    def lag(self, stored: Position) -> dict[str, Any]:
        logs = self.server.binary_logs()
        ((now,),) = self.server.query("SELECT UNIX_TIMESTAMP()")
        found: dict[str, Any] = {
            "server_position": str(self.server.current()),
            "lag_bytes": bytes_behind(stored, logs),
            "lag_transactions": self._transactions_behind(stored.gtid),
        }
        found["lag_seconds"] = 0.0 if found["lag_bytes"] == 0 else self._age(stored, int(now))
        return found

    def close(self) -> None:
        self.server.close()

    def _transactions_behind(self, gtid: str) -> int | None:
        """Return how many transactions the server logged in ``gtid``'s domain after it (MariaDB)."""
        if not gtid:
            return None
        domain, _, sequence = gtid.split("-")
        try:
            ((current,),) = self.server.query("SELECT @@gtid_binlog_pos")
        except pymysql.Error as exc:
            if exc.args and exc.args[0] == UNKNOWN_VARIABLE:
                return None
            raise
        for logged in filter(None, current.split(",")):
            logged_domain, _, logged_sequence = logged.strip().split("-")
            if logged_domain == domain:
                return max(0, int(logged_sequence) - int(sequence))
        return None

    def _age(self, position: Position, now: int) -> float | None:
        """Return the age, by the server's clock, of the first event after ``position``
        (None when none is there or the server refuses the replication request)."""
        reader = BinLogStreamReader(
            connection_settings={**self.server.settings, "read_timeout": READ_TIMEOUT},
            server_id=default_server_id(f"{self.alias}:health"),  # never the follower's: the server would drop it
            resume_stream=True,
            log_file=position.log_file,
            log_pos=position.log_pos,
            blocking=False,
            only_events=TIMED_EVENTS,
            enable_logging=False,
        )
        try:
            for event in reader:
                if event.timestamp:
                    return float(max(0, now - event.timestamp))
        except pymysql.Error:
            return None
        finally:
            reader.close()
        return None
