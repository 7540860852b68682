"""Transaction rules: read-your-writes inside ``atomic`` and when a fill is safe.

Per connection, the keys and containers written by the current transaction
bypass the cache and never fill. The written set is itself a no-op on_commit
callback: Django drops it on commit and on rollback, and with it the set.
While no written set is alive in the process, a read needs no connection
lookup to know that nothing bypasses the cache (the hit path).
"""

from __future__ import annotations

import weakref

from django.db import connections, transaction


class WrittenSet:
    __slots__ = ("keys", "containers", "__weakref__")

    def __init__(self):
        self.keys: set[tuple[str, str]] = set()
        self.containers: set[str] = set()

    def __call__(self):
        """The on_commit marker itself: nothing to do."""


# A weak reference to every written set still queued on a connection; each
# removes itself when its set dies (only the connection's run_on_commit holds it).
_alive: set[weakref.ref] = set()


def _current(connection) -> WrittenSet | None:
    if not connection.in_atomic_block:
        return None
    for entry in connection.run_on_commit:
        if isinstance(entry[1], WrittenSet):
            return entry[1]
    return None  # nothing written yet, or rolled back: the marker is gone


def note_write(using: str, container: str, keys=None) -> None:
    """Record that this transaction wrote ``keys`` (None: the whole container)."""
    connection = connections[using]
    if not connection.in_atomic_block:
        return
    written = _current(connection)
    if written is None:
        written = WrittenSet()
        _alive.add(weakref.ref(written, _alive.discard))
        transaction.on_commit(written, using=using)
    if keys is None:
        written.containers.add(container)
    else:
        written.keys.update((container, key) for key in keys)


def written_test(using: str, container: str):
    """Return a test ``key -> bool`` for the keys of ``container`` this
    transaction wrote, or None when it wrote none (outside ``atomic``: always).
    One look at the connection serves a whole read of many keys."""
    if not _alive:
        return None  # no transaction in the process has written
    written = _current(connections[using])
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
