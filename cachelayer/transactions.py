"""Transaction rules: read-your-writes inside ``atomic`` and when a fill is safe.

Per connection, the keys and containers written by the current transaction
bypass the cache and never fill. A transaction is recognised by a no-op
on_commit marker: Django drops it on rollback, so the written set goes with it.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from django.db import connections, transaction


class WrittenSet:
    __slots__ = ("keys", "containers", "__weakref__")

    def __init__(self):
        self.keys: set[tuple[str, str]] = set()
        self.containers: set[str] = set()

    def __call__(self):
        """The on_commit marker itself: nothing to do."""


_written: WeakKeyDictionary = WeakKeyDictionary()


def _current(connection) -> WrittenSet | None:
    written = _written.get(connection)
    if written is None or not connection.in_atomic_block:
        return None
    if not any(entry[1] is written for entry in connection.run_on_commit):
        return None  # rolled back: the marker is gone
    return written


def note_write(using: str, container: str, keys=None) -> None:
    """Record that this transaction wrote ``keys`` (None: the whole container)."""
    connection = connections[using]
    if not connection.in_atomic_block:
        return
    written = _current(connection)
    if written is None:
        written = _written[connection] = WrittenSet()
        transaction.on_commit(written, using=using)
    if keys is None:
        written.containers.add(container)
    else:
        written.keys.update((container, key) for key in keys)


def written_test(using: str, container: str):
    """Return a test ``key -> bool`` for the keys of ``container`` this
    transaction wrote, or None when it wrote none (outside ``atomic``: always).
    One look at the connection serves a whole read of many keys."""
    connection = connections[using]
    if not connection.in_atomic_block:
        return None
    written = _current(connection)
    if written is None:
        return None
    if container in written.containers:
        return lambda key: True
    return lambda key: (container, key) in written.keys


def bypasses_cache(using: str, container: str, key: str) -> bool:
    """Return True when this transaction wrote the key: read the database only."""
    test = written_test(using, container)
    return test is not None and test(key)


def _read_committed(connection) -> bool:
    level = getattr(connection, "isolation_level", None)
    if connection.vendor == "mysql":
        return (level or "read committed") == "read committed"  # Django's MySQL default
    if connection.vendor == "postgresql":
        return level in (None, 1) or "COMMITTED" in str(level).upper()
    return False  # SQLite and others: assume snapshot semantics


def may_fill(using: str) -> bool:
    """Return True when a read on ``using`` may store what it read.

    Outside ``atomic`` always; inside only under READ COMMITTED, where a read
    cannot return data older than the version fetched before it.
    """
    connection = connections[using]
    return not connection.in_atomic_block or _read_committed(connection)
