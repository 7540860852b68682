"""The request memo: a key read twice in one request or task costs one round trip.

A memo lives in the current context (thread or asyncio task): from
``request_started`` to ``request_finished`` when ``REQUEST_MEMO`` is on
(apps.py connects both), or inside a ``with cachelayer.memo():`` block, on
any setting. A read answers a key the memo holds from it, on every backend;
a key it read is kept, its row or its absence, as the read returned it.

Any write this process records (in ``atomic`` or not, at the write and
again at its commit) empties every memo of the process on its next look:
what a memo answers is never older than this process's last write. A write
by another process is seen by the next request, not by this one: within a
request the memo answers as the first read did (hence off by default).
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from cachelayer.adapters.nearcache import shareable
from cachelayer.core import conf

_writes = itertools.count(1)  # next() is atomic: every write gets a number no other has
_last_write = 0  # the number of the last write: a memo that saw another one empties itself


class Memo:
    """The rows one request (or ``memo()`` block) has read, by container and key."""

    __slots__ = ("rows", "seen")

    def __init__(self):
        self.rows: dict = {}
        self.seen = _last_write

    def get(self, definition, key, missing):
        kept = self.rows.get((definition.name, key))
        if kept is None or kept[0] is not definition:
            return missing
        return kept[1] if kept[2] else pickle.loads(kept[1])

    def put(self, definition, key, row) -> None:
        frozen = shareable(row)
        self.rows[(definition.name, key)] = (definition, row if frozen else pickle.dumps(row), frozen)


_current: ContextVar[Memo | None] = ContextVar("cachelayer_memo", default=None)


def current() -> Memo | None:
    """Return the memo of the current context, emptied if this process wrote since it last looked."""
    memo = _current.get()
    if memo is not None and memo.seen != _last_write:
        memo.rows.clear()
        memo.seen = _last_write
    return memo


def wrote() -> None:
    """Empty every memo of this process (on its next look): a write was recorded or committed."""
    global _last_write
    _last_write = next(_writes)


@contextmanager
def memo() -> Iterator[Memo]:
    """Memoize the reads of a block (a task, a management command): a key read
    twice costs one round trip. Works whatever ``REQUEST_MEMO`` says."""
    opened = Memo()
    token = _current.set(opened)
    try:
        yield opened
    finally:
        _current.reset(token)


def request_started(**kwargs) -> None:
    """Open the request's memo (request_started), when ``REQUEST_MEMO`` is on."""
    if conf.get("REQUEST_MEMO"):
        _current.set(Memo())


def request_finished(**kwargs) -> None:
    """Close the request's memo (request_finished)."""
    if _current.get() is not None:
        _current.set(None)
