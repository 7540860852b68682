"""Tell a database that cannot be reached from one that lacks cachelayer's tables.

Before ``migrate`` the configuration tables are missing, which is no error:
nothing is mapped yet. With the server down the same query fails too, and
"run migrate" would send the operator the wrong way. On PostgreSQL a failed
statement aborts the surrounding transaction, so the reads that may fail run
in a savepoint when inside one, and the probe after them still works.
"""

from __future__ import annotations

import logging
import threading
from contextlib import nullcontext

from django.db import DatabaseError, connections, transaction

from cachelayer.core import logfields

logger = logging.getLogger("cachelayer")


def guarded(alias: str):
    """Return a context in which a failed statement leaves the caller's transaction usable."""
    return transaction.atomic(using=alias) if connections[alias].in_atomic_block else nullcontext()


def unreachable(alias: str) -> bool:
    """Return True when ``alias`` cannot run the simplest statement (not connected, or gone away)."""
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return True
    return False


def in_own_connection(function, *args) -> None:
    """Run ``function(*args)`` in a short-lived thread, on database connections of its own.

    What it writes commits even when the caller is inside ``atomic``; a
    database error is logged, never raised into the caller.
    """

    def run():
        try:
            function(*args)
        except DatabaseError as exc:
            logger.error(
                "cachelayer: %s failed: %s", getattr(function, "__name__", function), exc, extra=logfields.fields()
            )
        finally:
            connections.close_all()  # this thread's connections only

    worker = threading.Thread(target=run, name="cachelayer-own-connection", daemon=True)
    worker.start()
    worker.join()
