"""How a container's misses are read from the database and stored: one loader
per container kind, chosen once per read (``of``), so the read path
(reads.py, leases.py), warming and inspection never branch on the kind.

- ``ROWS``: a key maps to one row (values in the container's ``stored`` order).
- ``LISTS``: an index container's key maps to the tuple of rows that hold it,
  by primary key; a list over ``INDEX_MAX_ROWS`` is stored as its length
  alone, ``(n,)`` (indexes.py says why).

Both store through versions.fill, under the versions read before the query.
"""

from __future__ import annotations

from django.db.models import Q

from cachelayer.core import conf
from cachelayer.engine import stats, versions
from cachelayer.engine.definitions import Definition


class Loader:
    """Read a container's keys from the database, and store them as a fill does."""

    def query(self, definition: Definition, user_keys: list[str], using: str) -> dict:
        """Return ``{key: entry}`` for canonical ``user_keys`` (absent keys left out, or empty lists)."""
        raise NotImplementedError

    def collect(self, definition: Definition, user_keys: list[str], rows) -> dict:
        """Return ``query``'s answer from ``rows`` (in ``stored`` order, by primary key) that
        hold any key of several containers' (query_together); under an exact collation only."""
        raise NotImplementedError

    def payloads(self, definition: Definition, states: list, entries: dict) -> tuple[dict, list[str]]:
        """Return what a fill of ``entries`` stores (versions.payloads), and the keys too large to store."""
        raise NotImplementedError

    def fill(self, definition: Definition, states: list, entries: dict) -> list[str]:
        """Store ``entries`` under the versions in ``states``; return the keys too large to store."""
        groups, too_large = self.payloads(definition, states, entries)
        versions.store({definition: groups})
        return too_large

    def stored(self, definition: Definition, user_keys: list[str], using: str) -> dict:
        """Return what a fill of ``user_keys`` would store now (inspection compares it)."""
        return self.query(definition, user_keys, using)


class _Rows(Loader):
    def query(self, definition, user_keys, using):
        return query_rows(definition, user_keys, using)

    def collect(self, definition, user_keys, rows):
        wanted, key_of = set(user_keys), definition.codec.key_of
        return {key: row for row in rows if (key := key_of(row)) in wanted}

    def payloads(self, definition, states, entries):
        return versions.payloads(definition, states, entries)


class _Lists(Loader):
    def query(self, definition, user_keys, using):
        return query_lists(definition, user_keys, using)

    def collect(self, definition, user_keys, rows):
        return _lists_of(definition, user_keys, rows)

    def payloads(self, definition, states, entries):
        return payloads_lists(definition, states, entries)

    def stored(self, definition, user_keys, using):
        return stored_form(query_lists(definition, user_keys, using))


ROWS, LISTS = _Rows(), _Lists()


def of(definition: Definition) -> Loader:
    """Return the loader of a container's kind."""
    return LISTS if definition.is_index else ROWS


def query_rows(definition: Definition, user_keys: list[str], using: str) -> dict[str, tuple]:
    """Read rows by key from the database in one query (values in ``stored`` order).

    Under a collation that cannot be folded exactly, rows cannot be told apart by
    key in Python: each key is read by a query of its own."""
    pairs = key_lookups(definition, user_keys)
    if not pairs:
        return {}
    manager = definition.model._base_manager.using(using)
    if not definition.codec.exact():
        found = ((key, manager.filter(**lookup).values_list(*definition.stored).first()) for key, lookup in pairs)
        return {key: row for key, row in found if row is not None}
    qs = manager.filter(_condition(definition, pairs))
    keyed = ((definition.codec.key_of(row), row) for row in qs.values_list(*definition.stored))
    return {key: row for key, row in keyed if key is not None}  # None: a stored value no key is made of


def query_together(wanted: dict[Definition, list[str]], using: str) -> dict[Definition, dict]:
    """Read the keys of several containers of one model in one query: ``{definition:
    its loader's query answer}`` (a refill after a write outdates the row in each).

    The rows holding any container's keys are read once, with the columns any of
    them stores, by primary key; each container keeps the rows that hold its keys.
    Under exact collations only (rows are told apart by key in Python)."""
    if len(wanted) == 1:
        ((definition, user_keys),) = wanted.items()
        return {definition: of(definition).query(definition, user_keys, using)}
    condition, columns = Q(), {}
    for definition, user_keys in wanted.items():
        if pairs := key_lookups(definition, user_keys):
            condition |= _condition(definition, pairs)
        columns.update(dict.fromkeys(definition.stored))
    model = next(iter(wanted)).model
    rows = []
    if condition:
        rows = list(model._base_manager.using(using).filter(condition).order_by("pk").values_list(*columns))
    position = {attname: i for i, attname in enumerate(columns)}
    answers = {}
    for definition, user_keys in wanted.items():
        picks = [position[attname] for attname in definition.stored]
        own = [tuple(row[i] for i in picks) for row in rows]
        answers[definition] = of(definition).collect(definition, user_keys, own)
    return answers


def _condition(definition: Definition, pairs: list[tuple[str, dict]]) -> Q:
    """Return the ORM condition that matches the rows of the keys ``pairs`` (key_lookups) name."""
    if len(definition.key_fields) == 1:
        attname = definition.key_fields[0].attname
        return Q(**{f"{attname}__in": [lookup[attname] for _, lookup in pairs]})
    condition = Q()
    for _, lookup in pairs:
        condition |= Q(**lookup)
    return condition


def key_lookups(definition: Definition, user_keys: list[str]) -> list[tuple[str, dict]]:
    """Return ``(key, ORM filter)`` of the keys a row can have."""
    pairs = ((key, definition.codec.lookup(key)) for key in user_keys)
    return [(key, lookup) for key, lookup in pairs if lookup is not None]


def query_lists(definition: Definition, user_keys: list[str], using: str) -> dict[str, tuple]:
    """Read the lists of canonical ``user_keys`` in one query: ``{key: rows}``,
    rows by primary key, an empty tuple for a key no row holds (one query per key
    under a collation that cannot be folded exactly: rows are not told apart in Python)."""
    manager = definition.model._base_manager.using(using)
    pairs = key_lookups(definition, user_keys)
    if not definition.codec.exact():
        lists = dict.fromkeys(user_keys, ())
        for key, lookup in pairs:
            lists[key] = tuple(manager.filter(**lookup).order_by("pk").values_list(*definition.stored))
        return lists
    rows = manager.filter(_condition(definition, pairs)).order_by("pk") if pairs else None
    return _lists_of(definition, user_keys, rows.values_list(*definition.stored) if rows is not None else ())


def _lists_of(definition: Definition, user_keys: list[str], rows) -> dict[str, tuple]:
    """Return ``{key: the rows that hold it}`` of ``rows`` (in ``stored`` order, by primary key)."""
    lists: dict[str, list] = {key: [] for key in user_keys}
    for row in rows:
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


def payloads_lists(definition: Definition, states: list, lists: dict) -> tuple[dict, list[str]]:
    """Return what a fill of lists stores, under the versions read before their query; a list
    over INDEX_MAX_ROWS is stored as its length (see the module docstring)."""
    stored = stored_form(lists)
    markers = sum(map(too_long, stored.values()))
    if markers:
        stats.incr(definition.name, "too_large", markers)
    return versions.payloads(definition, states, stored)
