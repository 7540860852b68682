"""Load a container's rows into its cache ahead of the reads (cache_warm, the admin action).

Rows are visited in key order, one chunk at a time: the chunk's keys (one
query), their generation and versions (one multi-get), the rows not cached
yet (one query), then one multi-set through ``versions.fill``. A warm fill
therefore obeys the read path's rule: it stores the versions read BEFORE the
database read, so a write racing the warm is never hidden. Keys already
cached are skipped, so an interrupted warm can simply run again. An index
container is warmed one distinct value at a time: each key's whole list.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db import connections
from django.db.models import Q

from cachelayer.core.policies import Policy
from cachelayer.engine import loaders, reads, transactions, versions
from cachelayer.engine.definitions import Definition
from cachelayer.engine.registry import registry
from cachelayer.exceptions import CachelayerError, CacheUnavailable

CHUNK_SIZE = 500  # keys per multi-get / query / multi-set


@dataclass
class WarmResult:
    container: str
    warmed: int = 0  # rows (or negative entries) stored
    cached: int = 0  # already valid in the cache: left alone
    written: int = 0  # written by the current transaction: left to its commit
    too_large: int = 0  # payload over the cache's item size limit: not stored
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return self.warmed + self.cached + self.too_large + self.written


def unfilled(definition: Definition) -> str | None:
    """Return why reads of a container never fill its cache, or None when they do.

    Raises OperationDisabled when its get policy is ``disabled``.
    """
    policy = definition.policy("get")
    if policy != Policy.CACHING:
        return f"get_policy is {policy}, so reads do not fill the cache"
    if not definition.codec.exact():
        return "a key column's collation cannot be folded exactly, so reads go to the database (cachelayer.W040)"
    return None


def refusal(definition: Definition) -> str | None:
    """Return why a container cannot be warmed, or None when it can (see ``unfilled``)."""
    reason = unfilled(definition)
    return reason and f"container {definition.name!r}: {reason}"


def row_count(definition: Definition) -> int:
    return definition.model._base_manager.using(definition.db_alias()).count()


def key_count(definition: Definition) -> int:
    """Return how many keys a warm or an inspection visits: a key container's
    rows, an index container's distinct values (one list each)."""
    if not definition.is_index:
        return row_count(definition)
    return _keys(definition).count()


def _keys(definition: Definition):
    """The container's keys in key order, as column tuples (an index: each value once; a NULL is in no list)."""
    attnames = [f.attname for f in definition.key_fields]
    rows = definition.model._base_manager.using(definition.db_alias()).order_by(*attnames).values_list(*attnames)
    if definition.is_index:
        rows = rows.filter(**{f"{name}__isnull": False for name in attnames}).distinct()
    return rows


def _after(attnames: list[str], last: tuple) -> Q:
    """Return the condition "key > last" in lexicographic key order."""
    condition = Q()
    for i, name in enumerate(attnames):
        condition |= Q(**dict(zip(attnames[:i], last[:i])), **{f"{name}__gt": last[i]})
    return condition


def keys_after(definition: Definition, last: tuple | None, limit: int) -> tuple[list[tuple], list[str]]:
    """Return up to ``limit`` keys after ``last`` in key order: as column tuples and as user keys."""
    attnames = [f.attname for f in definition.key_fields]
    rows = _keys(definition)
    page = list((rows if last is None else rows.filter(_after(attnames, last)))[:limit])
    keys = (definition.codec.key_from(dict(zip(attnames, row))) for row in page)
    return page, [key for key in keys if key is not None]


def warm(definition: Definition, chunk_size: int = CHUNK_SIZE, progress=None) -> WarmResult:
    """Warm every row of a container; call ``progress(rows)`` after each chunk.

    Follows the read path's fill rule: refused inside ``atomic`` unless under
    READ COMMITTED (an older snapshot would be stored under new versions),
    and keys the transaction wrote are left alone.
    """
    using = definition.db_alias()
    if not transactions.may_fill(using):
        raise CachelayerError(
            f"cannot warm {definition.name} inside a transaction on {using!r} that is not READ COMMITTED "
            f"({transactions.isolation_level(connections[using]) or 'snapshot'}): its reads may be older than the cache"
        )
    result = WarmResult(definition.name)
    started = time.monotonic()
    last = None
    while True:
        page, keys = keys_after(definition, last, chunk_size)
        if not page:
            break
        try:
            states, unreachable = versions.fetch(definition, keys)
        except versions.Restart:  # the configuration changed: warm with the new definition
            definition = registry.get(definition.name)
            continue
        if unreachable:
            raise CacheUnavailable(
                f"cache {definition.cache_alias} cannot be written now; warm {definition.name} later",
                cache=definition.cache_alias,
            )
        missing = [state for state in states.values() if state.row is versions.MISSING]
        to_fill = reads.fillable(definition, using, missing)
        if to_fill:
            loader = loaders.of(definition)
            rows = loader.query(definition, [state.key for state in to_fill], using)
            too_large = loader.fill(definition, to_fill, rows)
            result.too_large += len(too_large)
            result.warmed += len(to_fill) - len(too_large)
        result.written += len(missing) - len(to_fill)
        result.cached += len(keys) - len(missing)
        last = page[-1]
        if progress:
            progress(len(page))
    result.seconds = time.monotonic() - started
    return result
