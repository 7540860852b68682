"""How far behind its server a follower is, measured on the server.

A follower's own row can only say where it stored its position and when it
last wrote; a stopped or wedged process says nothing at all. So the lag is
asked of the followed server when someone looks (each source's ``lag``: the
binlog's bytes, transactions and oldest unstored event, or the replication
slot's unconfirmed WAL and the follower session's last poll). The follower
is stale when the server has waited longer than ``STALE_AFTER`` for it, down
when its heartbeat stopped.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from cachelayer.exceptions import FollowerError
from cachelayer.tasks.follow.position import Position
from cachelayer.tasks.follow.sources import open_source

STALE_AFTER = 10.0  # seconds an event may wait past the stored position (more than progress.HEARTBEAT: its own write)
DOWN_AFTER = 15.0  # seconds without a position write (the heartbeat comes every progress.HEARTBEAT)
OK, STALE, DOWN, UNKNOWN = "ok", "stale", "down", "unknown"
UNHEALTHY = {STALE, DOWN, UNKNOWN}


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
        source = open_source(row["database"], slot=row["log_file"])
    except (FollowerError, KeyError) as exc:  # not a followable engine, or an alias this project lacks
        return {**found, "server_position": f"unknown: {exc}"}
    stored = Position(row["log_file"], row["log_pos"], row["gtid"])
    try:
        found.update(source.lag(stored))
    except source.errors as exc:
        return {**found, "server_position": f"cannot ask the server: {exc}"}
    finally:
        source.close()
    updated = row["updated"]
    if found["lag_bytes"] is None or (found["lag_seconds"] or 0) > STALE_AFTER:
        found["state"] = STALE  # (a stored position the server purged, or a lost slot, is behind for good)
    elif updated is None or (timezone.now() - updated).total_seconds() > DOWN_AFTER:
        found["state"] = DOWN
    else:
        found["state"] = OK
    return found
