"""A control connection of the follower's own, apart from Django's, for either driver.

The follower's queries (settings, positions, lag) must never share a
transaction with anything else, and a server that restarted must cost one
reconnect, not an error: one query is retried once on a fresh connection.
"""

from __future__ import annotations

from typing import Any


class ControlConnection:
    """Lazily connected; subclasses say how to connect, run and which error means "lost"."""

    lost: tuple[type[Exception], ...] = ()  # the driver's "connection lost" errors
    broken: tuple[type[Exception], ...] = ()  # errors closing a connection may raise

    _connection: Any = None

    def _connect(self) -> Any:
        raise NotImplementedError

    def _run(self, connection, sql: str, args) -> list[tuple]:
        raise NotImplementedError

    def query(self, sql: str, args=None) -> list[tuple]:
        """Run one statement, reconnecting once if the connection was lost."""
        for attempt in (1, 2):
            try:
                if self._connection is None:
                    self._connection = self._connect()
                return self._run(self._connection, sql, args)
            except self.lost:
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except self.broken:
                pass
            self._connection = None
