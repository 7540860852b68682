"""What the follower needs of a followed database, whatever its log.

The follower's loop (follower.py), its stored position (progress.py) and its
health states (health.py) are the same for every database; only reading the
log differs: the MySQL/MariaDB row binlog read as a replica (binlog.py), or
PostgreSQL's logical decoding through a replication slot (wal.py). A source
is that difference, and nothing else.
"""

from __future__ import annotations

from typing import Any

from cachelayer.exceptions import FollowerError
from cachelayer.tasks.follow.position import Position
from cachelayer.tasks.follow.stream import Stream


class Source:
    """One followed database, seen through a control connection of the source's own."""

    name = ""  # for messages: where the log is
    server_id = 0  # stored with the position (a replica's server id on MySQL/MariaDB)
    errors: tuple[type[Exception], ...] = (OSError,)  # the server refused or went away: retry

    def preflight(self) -> None:
        """Raise FollowerError, naming the setting or privilege to fix, when the log cannot be followed."""
        raise NotImplementedError

    def notes(self) -> list[str]:
        """Return what the operator should know before the follower starts (not errors)."""
        return []

    def follows(self, alias: str) -> bool:
        """Return True when DATABASES[alias] is read from this source's log."""
        raise NotImplementedError

    def table_key(self, alias: str, db_table: str) -> tuple[str, str]:
        """Return (schema, table) as the log names ``db_table`` of ``alias``."""
        raise NotImplementedError

    def columns(self, keys) -> dict[tuple[str, str], list[str]]:
        """Return each table's column names, in table order."""
        raise NotImplementedError

    def cascades(self, keys) -> list[tuple]:
        """Return the foreign keys whose changes to child rows the log does not carry (tables.py)."""
        return []

    def decode(self, field, value):
        """Return a column value as the ORM would have it before the database converters (as logged)."""
        return value

    def verify(self, tables) -> None:
        """Raise FollowerError when the log cannot carry a key some container needs (tables.Tables)."""

    def current(self) -> Position:
        """Return where a follower starting now begins."""
        raise NotImplementedError

    def oldest(self) -> Position:
        """Return the oldest position the server still has (``--from-start``)."""
        raise NotImplementedError

    def unresumable(self, stored: Position) -> str | None:
        """Return why ``stored`` cannot be resumed from (then every generation is bumped), else None."""
        return None

    def stream(self, start: Position, tables, *, blocking: bool) -> Stream:
        raise NotImplementedError

    def fatal(self, error: BaseException) -> FollowerError | None:
        """Return the error to stop with when ``error`` cannot heal by retrying (a missing privilege)."""
        return None

    def position_lost(self, error: BaseException) -> bool:
        """Return True when the server says the delivered position is no longer in its log."""
        return False

    def lag(self, stored: Position) -> dict[str, Any]:
        """Measure on the server how far behind ``stored`` is: server_position, lag_bytes,
        lag_transactions and lag_seconds (None where the source cannot tell)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
