"""The objects open in the current context (thread or asyncio task).

Recordings of what cachelayer did for a request (contrib/recording.py) and
their round-trip counters (adapters/trips.py) must see only their own
request's work, though other requests run in other threads or tasks at the
same time: each keeps its open objects in a ContextVar, innermost last.
"""

from __future__ import annotations

from contextvars import ContextVar, Token


class ContextStack:
    def __init__(self, name: str):
        self._var: ContextVar[tuple] = ContextVar(name, default=())

    def get(self) -> tuple:
        return self._var.get()

    def push(self, item) -> Token:
        return self._var.set((*self._var.get(), item))

    def pop(self, item, token: Token) -> None:
        """Close ``item``; from another context than it opened in, just drop it there."""
        try:
            self._var.reset(token)
        except (ValueError, RuntimeError):
            self._var.set(tuple(other for other in self._var.get() if other is not item))
