"""The stored position and the live status of one follower (a FollowerPosition row).

The position is written only after the invalidations before it were
delivered (or kept in the outbox): at most every ``SAVE_INTERVAL`` while
busy and as soon as the stream is idle, so a killed follower replays at most
that much. The status (events/s, lag, last error) rides along at most every
``STATUS_INTERVAL``, where cache_stats, the admin and cache_serve read it.
"""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError, connections, router
from django.utils import timezone

from cachelayer.engine import transactions
from cachelayer.tasks.follow.position import Position, bytes_behind

logger = logging.getLogger("cachelayer")

SAVE_INTERVAL = 0.5  # seconds between two position writes while events keep coming
STATUS_INTERVAL = 1.0  # seconds between two status refreshes


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
        self._next_save = self._next_status = 0.0
        self._window = (time.monotonic(), 0)  # (since, events then)

    def load(self) -> Position | None:
        row = self.model.objects.using(self.using).filter(database=self.alias).first()
        self.saved = Position(row.log_file, row.log_pos, row.gtid) if row else None
        return self.saved

    def due(self, idle: bool) -> bool:
        """Return True when the position should be written now."""
        return idle or time.monotonic() >= self._next_save

    def fail(self, message: str, log: bool = True) -> None:
        """Remember an error for the status (and log it, unless the caller reports it)."""
        self.last_error = f"{timezone.now():%Y-%m-%d %H:%M:%S} {message}"
        if log:
            logger.error("cachelayer: cache_follow %s: %s", self.alias, message)

    def save(self, position: Position, server=None, timestamp: int | None = None, final: bool = False) -> bool:
        """Store ``position`` (and the status when due, or ``final``); False when the database refused."""
        now = time.monotonic()
        fields = {"server_id": self.server_id, "log_file": position.log_file, "log_pos": position.log_pos,
                  "gtid": position.gtid, "updated": timezone.now()}
        if final or now >= self._next_status or self.saved is None:
            fields.update(self._status(position, server, timestamp, now))
        try:
            if not self.model.objects.using(self.using).filter(database=self.alias).update(**fields):
                self.model.objects.using(self.using).create(database=self.alias, **fields)
        except DatabaseError as exc:
            connections[self.using].close()  # a fresh connection next time
            self.fail(f"could not store the position {position}: {exc}")
            return False
        self.saved = position
        self._next_save = now + SAVE_INTERVAL
        return True

    def _status(self, position: Position, server, timestamp: int | None, now: float) -> dict:
        since, events_then = self._window
        self._window = (now, self.events)
        self._next_status = now + STATUS_INTERVAL
        lag_bytes = None
        if server is not None:
            try:
                lag_bytes = bytes_behind(position, server.binary_logs())
            except Exception as exc:  # the status is best effort; the next refresh tries again
                logger.debug("cachelayer: cache_follow could not read the binary logs: %s", exc)
        lag_seconds = None
        if lag_bytes == 0:
            lag_seconds = 0.0
        elif timestamp:
            lag_seconds = max(0.0, time.time() - timestamp)
        return {
            "events": self.events,
            "events_per_second": (self.events - events_then) / max(now - since, 1e-6),
            "lag_seconds": lag_seconds,
            "lag_bytes": lag_bytes,
            "last_error": self.last_error,
            "started": self._started,
        }


STATUS_COLUMNS = ("database", "position", "gtid", "events", "events_per_second", "lag_seconds", "lag_bytes", "updated", "last_error")


def status() -> list[dict]:
    """Return every follower's position and live status, as cache_stats and the admin show them."""
    from cachelayer.models import FollowerPosition

    using = router.db_for_read(FollowerPosition)
    try:
        with transactions.probe(using):
            rows = list(FollowerPosition.objects.using(using).values())
    except DatabaseError:
        return []
    shown = []
    for row in rows:
        row["position"] = f"{row['log_file']}:{row['log_pos']}"
        row["events_per_second"] = round(row["events_per_second"], 1)
        row["lag_seconds"] = None if row["lag_seconds"] is None else round(row["lag_seconds"], 3)
        row["updated"] = row["updated"] and row["updated"].strftime("%Y-%m-%d %H:%M:%S")
        shown.append({column: row[column] for column in STATUS_COLUMNS})
    return shown


def counters() -> dict[str, object]:
    """Return the status as flat ``follower:<database>:<name>`` counters (cache_serve's ``stats containers``)."""
    return {
        f"follower:{row['database']}:{name}": "" if value is None else value
        for row in status()
        for name, value in row.items()
        if name not in ("database", "last_error", "gtid")
    }
