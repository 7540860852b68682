"""How far behind its server a follower is, measured on the server.

A follower's own row can only say where it stored its position and when it
last wrote; a stopped or wedged process says nothing at all. So the lag is
asked of the followed server when someone looks: the binlog bytes after the
stored position (``SHOW BINARY LOGS``), the transactions after its GTID
(``@@gtid_binlog_pos``, MariaDB), and the age of the oldest event it has not
stored past (that event's own timestamp, read with a one-event replication
request, against the server's clock). The follower is stale when that event
is older than ``STALE_AFTER``, down when its heartbeat stopped.
"""

from __future__ import annotations

from typing import Any

import pymysql
from django.utils import timezone
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import GtidEvent, MariadbGtidEvent, QueryEvent, XidEvent

from cachelayer.exceptions import FollowerError
from cachelayer.tasks.follow.position import Position, bytes_behind
from cachelayer.tasks.follow.server import READ_TIMEOUT, Server, default_server_id
from cachelayer.tasks.follow.stream import ROW_EVENTS

STALE_AFTER = 10.0  # seconds an event may wait past the stored position (more than progress.HEARTBEAT: its own write)
DOWN_AFTER = 15.0  # seconds without a position write (the heartbeat comes every progress.HEARTBEAT)
OK, STALE, DOWN, UNKNOWN = "ok", "stale", "down", "unknown"
UNHEALTHY = {STALE, DOWN, UNKNOWN}
TIMED_EVENTS = [MariadbGtidEvent, GtidEvent, QueryEvent, XidEvent, *ROW_EVENTS]  # stamped with their write's time
UNKNOWN_VARIABLE = 1193  # ER_UNKNOWN_SYSTEM_VARIABLE: @@gtid_binlog_pos on MySQL


def measure(row: dict) -> dict:
    """Return the state and lag of the follower whose FollowerPosition values are ``row``."""
    found: dict[str, Any] = {
        "state": UNKNOWN,
        "server_position": None,
        "lag_seconds": None,
        "lag_bytes": None,
        "lag_transactions": None,
    }
    try:
        server = Server(row["database"])
    except (FollowerError, KeyError) as exc:  # not MySQL/MariaDB, or an alias this project lacks
        return {**found, "server_position": f"unknown: {exc}"}
    stored = Position(row["log_file"], row["log_pos"], row["gtid"])
    try:
        logs = server.binary_logs()
        ((now,),) = server.query("SELECT UNIX_TIMESTAMP()")
        found.update(
            server_position=str(server.current()),
            lag_bytes=bytes_behind(stored, logs),
            lag_transactions=_transactions_behind(server, stored.gtid),
        )
        found["lag_seconds"] = 0.0 if found["lag_bytes"] == 0 else _age(server, stored, int(now), row["database"])
    except (pymysql.Error, OSError) as exc:
        return {**found, "server_position": f"cannot ask the server: {exc}"}
    finally:
        server.close()
    updated = row["updated"]
    if found["lag_bytes"] is None or (found["lag_seconds"] or 0) > STALE_AFTER:
        found["state"] = STALE  # (a stored position the server purged is behind for good)
    elif updated is None or (timezone.now() - updated).total_seconds() > DOWN_AFTER:
        found["state"] = DOWN
    else:
        found["state"] = OK
    return found


def _transactions_behind(server: Server, gtid: str) -> int | None:
    """Return how many transactions the server logged in ``gtid``'s domain after it (MariaDB)."""
    if not gtid:
        return None
    domain, _, sequence = gtid.split("-")
    try:
        ((current,),) = server.query("SELECT @@gtid_binlog_pos")
    except pymysql.Error as exc:
        if exc.args and exc.args[0] == UNKNOWN_VARIABLE:
            return None
        raise
    for logged in filter(None, current.split(",")):
        logged_domain, _, logged_sequence = logged.strip().split("-")
        if logged_domain == domain:
            return max(0, int(logged_sequence) - int(sequence))
    return None


def _age(server: Server, position: Position, now: int, alias: str) -> float | None:
    """Return the age, by the server's clock, of the first event after ``position``
    (None when none is there or the server refuses the replication request)."""
    reader = BinLogStreamReader(
        connection_settings={**server.settings, "read_timeout": READ_TIMEOUT},
        server_id=default_server_id(f"{alias}:health"),  # never the follower's: the server would drop it
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
