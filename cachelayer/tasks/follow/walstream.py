"""The WAL reader thread: wal2json changes of a replication slot in, committed transactions out.

Each turn reads the server's WAL end, then peeks at the slot's changes up to
it (whole transactions, at most ``PEEK_LIMIT`` changes past the last one),
hands the transactions over, waits until the follower confirms it delivered
them (``confirm``) and only then advances the slot: past the last of them, or
to the WAL end read first when the peek stopped short of no limit (every
commit before it was decoded). A peek always starts at the slot's confirmed
position, so nothing is read twice unless a follower died before confirming
(at least once). SQL cannot wait for the WAL to grow, so the thread polls:
soon after a change (``POLL_FIRST``, the next write of a burst is likely
near), then less often, doubling up to ``POLL_MAX`` while the slot is quiet.
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal

import psycopg

from cachelayer.tasks.follow.position import Position
from cachelayer.tasks.follow.stream import Stream, Transaction
from cachelayer.tasks.follow.tables import LoggedChanges, Tables

POLL_FIRST, POLL_MAX = 0.001, 0.02  # seconds between two peeks: right after a change, and at most
PEEK_LIMIT = 5000  # changes per peek (whole transactions: a bigger one comes whole)
CONFIRM_WAIT = 0.5  # seconds between two looks at the stop flag while a delivery is awaited


def options(tables: Tables, ddl_log: tuple[str, str] | None = None) -> list[str]:
    """Return wal2json's options: format 2 (a row per change), LSNs, only the watched tables (and the DDL log)."""
    keys = sorted({*tables.by_key, *([ddl_log] if ddl_log else [])})
    watched = ",".join(f"{_escape(schema)}.{_escape(table)}" for schema, table in keys)
    return ["format-version", "2", "include-lsn", "1", *(["add-tables", watched] if watched else [])]


def _escape(name: str) -> str:
    """Escape what wal2json's add-tables list treats specially (comma, dot, star, backslash, space)."""
    return "".join(f"\\{char}" if char in ",.*\\ " else char for char in name)


def decode(rows, tables: Tables, slot: str, ddl_log: tuple[str, str] | None = None) -> list[Transaction]:
    """Turn peeked ``(lsn as a number, data)`` rows into committed Transactions (whole ones only);
    a row the DDL event trigger logged (wal.py) bumps the watched tables its statement mentions."""
    transactions, changes = [], LoggedChanges()
    for lsn, data in rows:
        change = json.loads(data, parse_float=Decimal)  # numeric keys stay exact
        action = change["action"]
        if action == "B":
            changes = LoggedChanges()
        elif action == "C":
            transactions.append(Transaction(changes, Position(slot, int(lsn))))  # the commit's end
        elif action == "I" and (change["schema"], change["table"]) == ddl_log:
            logged = {column["name"]: column["value"] for column in change.get("columns", ())}
            tables.apply_statement(logged.get("statement") or "", changes)
        elif action in ("I", "U", "D", "T"):
            table = tables.by_key.get((change["schema"], change["table"]))
            if table is None:
                continue
            if action == "T":
                table.bump(changes)  # TRUNCATE logs no rows
                continue
            changes.rows += 1
            new = {column["name"]: column["value"] for column in change.get("columns", ())}
            old = {column["name"]: column["value"] for column in change.get("identity", ())}
            if action == "I":
                images = [new]
            elif action == "D":
                images = [old]
            else:  # an unchanged TOASTed column is absent from the new image: it is the old value
                images = [old, {**old, **new}]
            table.apply(images, action == "D", changes)
    return transactions


class WalStream(Stream):
    """Peek at ``source``'s slot, hand transactions over, advance the slot once they are delivered."""

    thread_name = "cachelayer-wal"

    def __init__(self, source, tables: Tables, *, blocking: bool):
        super().__init__(tables, blocking=blocking)
        self.source = source
        self._delivered = threading.Condition()
        self._confirmed = 0

    def confirm(self, position: Position) -> None:
        with self._delivered:
            self._confirmed = max(self._confirmed, position.log_pos)
            self._delivered.notify_all()

    def _wait_for(self, lsn: int) -> bool:
        with self._delivered:
            while self._confirmed < lsn:
                if self._stopped.is_set():
                    return False
                self._delivered.wait(CONFIRM_WAIT)
        return True

    def _read(self) -> None:
        slot, ddl_log, delay = self.source.slot, self.source.ddl_log, POLL_FIRST
        wanted = options(self.tables, ddl_log)
        with psycopg.connect(**self.source.params, autocommit=True) as connection:
            ((advanced,),) = connection.execute(
                "SELECT pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint FROM pg_replication_slots "
                "WHERE slot_name = %s",
                [slot],
            ).fetchall() or [(None,)]
            if advanced is None:
                raise psycopg.errors.UndefinedObject(f'replication slot "{slot}" does not exist')
            while not self._stopped.is_set():
                ((end, end_number),) = connection.execute(
                    "SELECT e::text, pg_wal_lsn_diff(e, '0/0')::bigint FROM pg_current_wal_lsn() e"
                ).fetchall()
                rows = connection.execute(
                    "SELECT pg_wal_lsn_diff(lsn, '0/0')::bigint, data "
                    "FROM pg_logical_slot_peek_changes(%s, %s::pg_lsn, %s, VARIADIC %s::text[])",
                    [slot, end, PEEK_LIMIT, wanted],
                ).fetchall()
                transactions = decode(rows, self.tables, slot, ddl_log)
                for transaction in transactions:
                    if not self._put(transaction):
                        return
                if transactions and not self._wait_for(transactions[-1].end.log_pos):
                    return
                target = int(end_number) if len(rows) < PEEK_LIMIT else 0
                if transactions:
                    target = max(target, transactions[-1].end.log_pos)
                if target > advanced:
                    connection.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", [slot, _lsn_text(target)])
                    advanced = target
                if transactions:
                    delay = POLL_FIRST
                elif not self.blocking:
                    return
                else:
                    self._stopped.wait(delay)
                    delay = min(delay * 2, POLL_MAX)


def _lsn_text(number: int) -> str:
    return f"{number >> 32:X}/{number & 0xFFFFFFFF:X}"
