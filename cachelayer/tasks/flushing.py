"""Flush a container (cache_flush, the admin action): outdate its cache, or truncate.

A flush is O(1): the container generation moves, so every payload becomes a
miss. Truncating also deletes every row, and only when the container's flush
policy touches the database (db_only or caching): a table is never emptied
under a policy that did not ask for it, and only by a user who may delete the
model's rows (``truncate_permission``): the flush permission alone outdates
the cache, it deletes nothing.
"""

from __future__ import annotations

from django.contrib.auth import get_permission_codename

from cachelayer.core.policies import touches_database
from cachelayer.engine import stats
from cachelayer.engine.definitions import Definition
from cachelayer.engine.invalidation import invalidate_container
from cachelayer.exceptions import CachelayerError
from cachelayer.repositories import Repository
from cachelayer.tasks.warming import row_count


def may_truncate(definition: Definition) -> bool:
    """Return True when the flush policy lets a flush delete the rows.

    Raises OperationDisabled when the flush policy is ``disabled``.
    """
    return touches_database(definition.policy("flush"))


def check_truncate(definition: Definition) -> None:
    """Raise CachelayerError unless the flush policy lets a flush delete the rows."""
    if not may_truncate(definition):
        raise CachelayerError(
            f"container {definition.name!r}: flush_policy is {definition.policies['flush_policy']}; "
            "truncating needs db_only or caching"
        )


def truncate_permission(definition: Definition) -> str:
    """Return the permission truncating needs: the model's own delete permission."""
    opts = definition.model._meta
    return f"{opts.app_label}.{get_permission_codename('delete', opts)}"


def check_truncate_permission(definition: Definition, user) -> None:
    """Raise CachelayerError unless ``user`` may delete the container's rows."""
    if not (user.is_active and user.has_perm(truncate_permission(definition))):
        raise CachelayerError(
            f"container {definition.name!r}: truncating deletes every row of {definition.model._meta.db_table}; "
            f"it needs the permission {truncate_permission(definition)}, which {user.get_username()!r} does not have"
        )


def flush(definition: Definition, truncate: bool = False) -> int:
    """Outdate every cached key of a container; return the number of rows deleted."""
    deleted = 0
    if truncate:
        check_truncate(definition)
        deleted = row_count(definition)
        Repository(definition.name).flush()
    else:
        definition.policy("flush")  # a disabled flush is refused here too
        invalidate_container(None, definition)
    stats.note_flush(definition.name)
    return deleted
