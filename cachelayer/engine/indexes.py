"""Index containers: a key maps to the list of rows that hold it.

An index entry is cached like a row (versions.py): under the container's
generation and the key's version, filled under the versions read BEFORE the
database read, behind the same lease, and never by a transaction that wrote
the key (reads.py). Its payload carries the rows themselves, in the
container's ``stored`` order, sorted by primary key, so a hit costs one round
trip. Every write of a row outdates the entries of its old and new values
(invalidation.py resolves row snapshots against every container of the
model), a write that changes no indexed column included: a cached list never
holds an old copy of a row.

A list longer than ``INDEX_MAX_ROWS`` is stored as its length alone, ``(n,)``
(a list's items are row tuples, never an int): readers that find that marker
go to the database without a lease, and it is counted as ``too_large``.
"""

from __future__ import annotations

from cachelayer.engine import loaders, reads, stats
from cachelayer.engine.definitions import Definition
from cachelayer.exceptions import MappingError


def read_lists(definition: Definition, user_keys: list[str], policy: str) -> dict[str, tuple]:
    """Return ``{key: rows}`` for canonical keys, read through the cache as the get policy says."""
    using = definition.db_alias()
    found = reads.read(definition, user_keys, using=using, **reads.read_modes(definition, policy))
    uncached = [key for key, entry in found.items() if loaders.too_long(entry)]
    if uncached:
        stats.incr(definition.name, "too_large", len(uncached))
        found.update(loaders.query_lists(definition, uncached, using))
    return {key: found.get(key, ()) for key in user_keys}


def read_list(target, key) -> tuple[Definition, tuple]:
    """Return the definition of an index container (a name) and the rows of one
    key, in any form the database accepts ("05" -> "5", "OPEN" -> "open" under a _ci collation)."""

    def run(definition, policy):
        if not definition.is_index:
            raise MappingError(f"container {definition.name!r} is not an index container")
        user_key = definition.codec.user_key(key)
        return definition, (() if user_key is None else read_lists(definition, [user_key], policy)[user_key])

    return reads.with_definition(target, "get", run)
