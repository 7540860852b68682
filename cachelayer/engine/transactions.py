"""Transaction rules: what a transaction wrote, and when a fill is safe.

Per connection, one ``Pending`` object collects what the current transaction
changed. It is itself the transaction's FIRST on_commit callback: it delivers
every invalidation before any other callback runs (a task queued before the
write must not read the old row through the cache), in one round trip per
cache however many writes the transaction made. Django drops it on rollback,
and with it the set. Until then the keys and containers it names bypass the
cache (read-your-writes) and never fill.

While no ``Pending`` is alive in the process, a read needs no connection
lookup to know that nothing bypasses the cache (the hit path).
"""

from __future__ import annotations

import weakref

from django.db import DatabaseError, connections

from cachelayer.engine import database


class Pending:
    """What the current transaction wrote; called once, at its commit.

    ``deliver`` never raises (invalidation.py keeps in the outbox what it
    could not deliver); the ``__qualname__`` is for Django's log of a robust
    callback that raised all the same.
    """

    __slots__ = ("__qualname__", "__weakref__", "_deliver", "changes", "containers", "keys")

    def __init__(self, changes, deliver):
        self.keys: set[tuple[str, str]] = set()
        self.containers: set[str] = set()
        self.changes = changes
        self._deliver = deliver
        self.__qualname__ = "cachelayer invalidation"

    def __call__(self):
        self._deliver(self.changes)


# A weak reference to every Pending still queued on a connection; each removes
# itself when its Pending dies (only the connection's run_on_commit holds it).
_alive: set[weakref.ref] = set()


# alias -> atomic depth counted as committed (cachelayer.testing: the blocks a
# TestCase opened around the test). Absent: 0, only a real commit counts.
committed_depths: dict[str, int] = {}


def depth(connection) -> int:
    """Return how many ``atomic`` blocks are open on a connection (each inner
    block pushes one savepoint id, even with ``savepoint=False``)."""
    return 1 + len(connection.savepoint_ids) if connection.in_atomic_block else 0


def _in_transaction(connection) -> bool:
    """Return whether a connection is inside a transaction that has not committed
    (for cache purposes: a block counted as committed is not one)."""
    return depth(connection) > committed_depths.get(connection.alias, 0)


def _current(connection) -> Pending | None:
    if not connection.in_atomic_block:
        return None
    queue = connection.run_on_commit  # (savepoint ids, callback, robust): pinned by test_django_internals
    for index, entry in enumerate(queue):
        if isinstance(entry[1], Pending):
            if not _in_transaction(connection):  # its block ended inside one counted as committed
                del queue[index]
                entry[1]()  # that block's commit, as far as the cache can tell
                return None
            return entry[1]
    return None  # nothing written yet, or rolled back: the marker is gone


def pending(using: str, new_changes, deliver) -> Pending | None:
    """Return the current transaction's Pending on ``using`` (created first in
    its on_commit queue), or None outside ``atomic``: deliver at once then."""
    connection = connections[using]
    if not _in_transaction(connection):
        _current(connection)  # delivers what a block counted as committed left
        return None
    current = _current(connection)
    if current is None:
        current = Pending(new_changes(), deliver)
        _alive.add(weakref.ref(current, _alive.discard))
        # First in the queue, robust: Django runs it before the callbacks that
        # were registered earlier, and a failure of it stops none of them.
        connection.run_on_commit.insert(0, (set(connection.savepoint_ids), current, True))  # type: ignore[arg-type]  # django-stubs: Django 4.2+ queues (sids, func, robust)
    return current


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


_server_levels: dict[str, str] = {}  # alias -> the server's default isolation level

# Per vendor, the statements that read the session's default level, tried in
# order (MySQL 8: transaction_isolation; MariaDB: tx_isolation too).
_SERVER_LEVEL_SQL = {
    "mysql": ("SELECT @@SESSION.transaction_isolation", "SELECT @@SESSION.tx_isolation"),
    "postgresql": ("SHOW default_transaction_isolation",),
}


def _server_isolation(connection) -> str:
    """Ask the server for its default level, once per alias."""
    level = _server_levels.get(connection.alias)
    if level is None:
        *fallible, last = _SERVER_LEVEL_SQL[connection.vendor]
        with connection.cursor() as cursor:
            for sql in fallible:
                try:
                    with database.guarded(connection.alias):
                        cursor.execute(sql)
                    break
                except DatabaseError:
                    continue
            else:
                cursor.execute(last)
            level = _server_levels[connection.alias] = cursor.fetchone()[0].replace("-", " ").lower()
    return level


def isolation_level(connection) -> str | None:
    """Return the isolation level of a connection's transactions, lower case
    (None where it is not known: assume snapshot semantics).

    Django's MySQL backend sets READ COMMITTED unless OPTIONS says otherwise
    (None: the server's default). Its PostgreSQL backend sets the level only
    when OPTIONS names one; without it the server's default applies
    (``default_transaction_isolation``, READ COMMITTED unless configured).
    """
    options = connection.settings_dict.get("OPTIONS") or {}
    if connection.vendor == "mysql":
        if "isolation_level" not in options:
            return "read committed"  # Django's MySQL default
        return (options["isolation_level"] or "").lower() or _server_isolation(connection)
    if connection.vendor == "postgresql":
        if "isolation_level" not in options:
            return _server_isolation(connection)
        level = connection.isolation_level.name.replace("_", " ").lower()  # a psycopg IsolationLevel
        return "read committed" if level == "read uncommitted" else level  # PostgreSQL runs it as such
    return None  # SQLite and others


def may_fill(using: str) -> bool:
    """Return True when a read on ``using`` may store what it read.

    Outside ``atomic`` always; inside only under READ COMMITTED, where a read
    cannot return data older than the version fetched before it.
    """
    connection = connections[using]
    return not _in_transaction(connection) or isolation_level(connection) == "read committed"
