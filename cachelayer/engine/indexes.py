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

from django.db.models import Q

from cachelayer.core import conf
from cachelayer.engine import reads, stats, versions
from cachelayer.engine.definitions import Definition
from cachelayer.exceptions import MappingError


def query_lists(definition: Definition, user_keys: list[str], using: str) -> dict[str, tuple]:
    """Read the lists of canonical ``user_keys`` in one query: ``{key: rows}``,
    rows by primary key, an empty tuple for a key no row holds (one query per key
    under a collation that cannot be folded exactly: rows are not told apart in Python)."""
    manager = definition.model._base_manager.using(using)
    pairs = versions.key_lookups(definition, user_keys)
    lists: dict[str, list] = {key: [] for key in user_keys}
    if not definition.codec.exact():
        for key, lookup in pairs:
            lists[key] = list(manager.filter(**lookup).order_by("pk").values_list(*definition.stored))
    elif pairs:
        condition = Q()
        for _, lookup in pairs:
            condition |= Q(**lookup)
        rows = manager.filter(condition).order_by("pk")
        for row in rows.values_list(*definition.stored):
            holder = definition.codec.key_of(row)
            if holder in lists:
                lists[holder].append(row)
    return {key: tuple(lists[key]) for key in user_keys}


def stored_form(lists: dict) -> dict:
    """Return what a fill stores for ``{key: rows}``: the rows, or ``(length,)`` for a list over INDEX_MAX_ROWS."""
    limit = conf.get("INDEX_MAX_ROWS")
    return {key: rows if len(rows) <= limit else (len(rows),) for key, rows in lists.items()}


def too_long(entry) -> bool:
    """Return True for the marker of a list over INDEX_MAX_ROWS."""
    return len(entry) == 1 and isinstance(entry[0], int)


def fill_lists(definition: Definition, states: list, lists: dict) -> list[str]:
    """Store lists under the versions read before their query; a list over
    INDEX_MAX_ROWS is stored as its length (see the module docstring)."""
    stored = stored_form(lists)
    markers = sum(map(too_long, stored.values()))
    if markers:
        stats.incr(definition.name, "too_large", markers)
    return versions.fill(definition, states, stored)


def loader(definition: Definition) -> tuple:
    """Return ``(query, fill)``: how a container's misses are read from the database and stored."""
    return (query_lists, fill_lists) if definition.is_index else (versions.query_rows, versions.fill)


def read_lists(definition: Definition, user_keys: list[str], policy: str) -> dict[str, tuple]:
    """Return ``{key: rows}`` for canonical keys, read through the cache as the get policy says."""
    using = definition.db_alias()
    found = reads.read(
        definition, user_keys, **reads.read_modes(definition, policy), query=query_lists, fill=fill_lists
    )
    uncached = [key for key, entry in found.items() if too_long(entry)]
    if uncached:
        stats.incr(definition.name, "too_large", len(uncached))
        found.update(query_lists(definition, uncached, using))
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
