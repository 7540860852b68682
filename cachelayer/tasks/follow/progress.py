"""The stored position and the live status of one follower (a FollowerPosition row).

The position is written only after the invalidations before it were
delivered (or kept in the outbox). A position that outdated something is
written at most every ``SAVE_INTERVAL`` while busy and as soon as the stream
is idle, so a killed follower replays at most that much. Any other move (the
follower's own position writes, tables nobody watches) waits for the
heartbeat, one write every ``HEARTBEAT``: an idle follower whose table lives
on the server it follows would otherwise write into that binlog forever.
The heartbeat also tells readers the process is alive (``updated``); how far
behind it is they measure on the server (health.py), never from this row.
A position the database refuses to store is fatal: the follower would
otherwise replay everything since, silently, on every restart.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import DatabaseError, connections, router
from django.utils import timezone

from cachelayer.core import logfields
from cachelayer.engine import database
from cachelayer.exceptions import FollowerError
from cachelayer.tasks.follow.position import Position

logger = logging.getLogger("cachelayer")

SAVE_INTERVAL = 0.5  # seconds between two position writes while events keep coming
STATUS_INTERVAL = 1.0  # seconds between two status refreshes
HEARTBEAT = 3.0  # seconds between two writes when nothing watched changed (health.DOWN_AFTER allows for it)
DENIED = {1044, 1142, 1227}  # MySQL/MariaDB: database, table, global privilege missing
INSUFFICIENT_PRIVILEGE = "42501"  # PostgreSQL's SQLSTATE


class Progress:
    """Load and store where one followed database is, and how the follower is doing."""

    def __init__(self, alias: str, server_id: int):
        from cachelayer.models import FollowerPosition

        self.model = FollowerPosition
        self.alias, self.server_id = alias, server_id
        self.using = router.db_for_write(FollowerPosition)
        self.events = 0
        self.last_error = ""
        self.saved: Position | None = None
        self._started = timezone.now()
        self._next_save = self._next_status = self._next_heartbeat = 0.0
        self._window = (time.monotonic(), 0)  # (since, events then)

    def load(self) -> Position | None:
        row = self.model.objects.using(self.using).filter(database=self.alias).first()
        self.saved = Position(row.log_file, row.log_pos, row.gtid) if row else None
        return self.saved

    def due(self, changed: bool, idle: bool) -> bool:
        """Return True when the position should be written now: soon after a
        delivery that outdated something, else on the heartbeat."""
        now = time.monotonic()
        if changed:
            return idle or now >= self._next_save
        return now >= self._next_heartbeat

    def fail(self, message: str, log: bool = True) -> None:
        """Remember an error for the status (and log it, unless the caller reports it)."""
        self.last_error = f"{timezone.now():%Y-%m-%d %H:%M:%S} {message}"
        if log:
            logger.error("cachelayer: cache_follow %s: %s", self.alias, message, extra=logfields.fields())

    def save(self, position: Position, final: bool = False) -> bool:
        """Store ``position`` (and the status when due, or ``final``); False when the database
        refused this time, FollowerError when it refuses for want of a grant (or at the ``final`` save)."""
        now = time.monotonic()
        fields = {
            "server_id": self.server_id,
            "log_file": position.log_file,
            "log_pos": position.log_pos,
            "gtid": position.gtid,
            "updated": timezone.now(),
        }
        if final or now >= self._next_status or self.saved is None:
            fields.update(self._status(now))
        try:
            if not self.model.objects.using(self.using).filter(database=self.alias).update(**fields):
                self.model.objects.using(self.using).create(database=self.alias, **fields)
        except DatabaseError as exc:
            connections[self.using].close()  # a fresh connection next time
            if _denied(exc):
                raise self._grant_error(exc) from None
            if final:
                raise FollowerError(
                    f"could not store the position {position} on database {self.using!r}: {exc}"
                ) from None
            self.fail(f"could not store the position {position}: {exc}")
            return False
        self.saved = position
        self._next_save, self._next_heartbeat = now + SAVE_INTERVAL, now + HEARTBEAT
        return True

    def _grant_error(self, exc: DatabaseError) -> FollowerError:
        connection = connections[self.using]
        user, table = connection.settings_dict["USER"], self.model._meta.db_table
        where = (
            f"`{connection.settings_dict['NAME']}`.`{table}` TO '{user}'@'<its host>'"
            if connection.vendor == "mysql"
            else f"{table} TO {user}"
        )
        return FollowerError(
            f"cannot store the position in {table} on database {self.using!r} ({exc}): "
            f"GRANT SELECT, INSERT, UPDATE ON {where}"
        )

    def _status(self, now: float) -> dict:
        since, events_then = self._window
        self._window = (now, self.events)
        self._next_status = now + STATUS_INTERVAL
        return {
            "events": self.events,
            "events_per_second": (self.events - events_then) / max(now - since, 1e-6),
            "last_error": self.last_error,
            "started": self._started,
        }


def _denied(exc: DatabaseError) -> bool:
    """Return True when ``exc`` says the user lacks a privilege (MySQL/MariaDB, PostgreSQL)."""
    cause = exc.__cause__
    code = exc.args[0] if exc.args else None
    return code in DENIED or getattr(cause, "sqlstate", getattr(cause, "pgcode", None)) == INSUFFICIENT_PRIVILEGE


STATUS_COLUMNS = (
    "database",
    "state",
    "position",
    "server_position",
    "lag_seconds",
    "lag_bytes",
    "lag_transactions",
    "gtid",
    "events",
    "events_per_second",
    "updated",
    "last_error",
)


def status() -> list[dict]:
    """Return every follower's position, its lag measured on its server now, and its live status,
    as cache_stats, ``cache_follow --status`` and the admin show them."""
    from cachelayer.models import FollowerPosition

    using = router.db_for_read(FollowerPosition)
    try:
        with database.guarded(using):
            rows: list[Any] = list(FollowerPosition.objects.using(using).values())
    except DatabaseError:
        return []
    if rows:  # the binlog client is needed only once a follower ran
        from cachelayer.tasks.follow.health import measure
    shown = []
    for row in rows:
        row.update(measure(row))
        row["position"] = f"{row['log_file']}:{row['log_pos']}"
        row["events_per_second"] = round(row["events_per_second"], 1)
        row["updated"] = row["updated"] and row["updated"].strftime("%Y-%m-%d %H:%M:%S")
        shown.append({column: row[column] for column in STATUS_COLUMNS})
    return shown


def describe(row: dict) -> str:
    """Return one line saying how a follower (a ``status()`` row) is doing."""
    lags = [
        f"{row[name]}{unit}"
        for name, unit in (("lag_seconds", " s"), ("lag_bytes", " bytes"), ("lag_transactions", " transactions"))
        if row[name] is not None
    ]
    return (
        f"{row['state']}: at {row['position']}, server at {row['server_position'] or '-'}, "
        f"lag {' / '.join(lags) or '-'}, {row['events_per_second']} events/s, {row['events']} events, "
        f"updated {row['updated'] or '-'}"
    )


def counters() -> dict[str, object]:
    """Return the status as flat ``follower:<database>:<name>`` counters (cache_serve's ``stats containers``)."""
    return {
        f"follower:{row['database']}:{name}": "" if value is None else value
        for row in status()
        for name, value in row.items()
        if name not in ("database", "last_error", "gtid")
    }
