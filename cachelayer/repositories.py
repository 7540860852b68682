"""The memcached command set mapped to DML, as the InnoDB memcached plugin does.

    get      SELECT ... WHERE key = ?               (read-through)
    set      INSERT ... or UPDATE ... (upsert)
    add      INSERT if absent          replace   UPDATE if present
    append / prepend / incr / decr / cas / touch   SELECT ... FOR UPDATE, then UPDATE
    delete   DELETE ... WHERE key = ?
    flush    DELETE every row (db_only / caching), else bump the generation

Every write verb is one *change*: a function from the current row (or None)
to ``(result, new column values or None)``. The same change runs against the
database (caching, db_only: then invalidate after commit) or against the
cache alone (cache_only: compare-and-set on the payload). Policies pick.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import partial

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import NOT_PROVIDED

from cachelayer.adapters.base import new_counter
from cachelayer.core.keys import join_parts
from cachelayer.core.limits import THIRTY_DAYS, UINT64
from cachelayer.core.policies import touches_database
from cachelayer.engine import indexes, invalidation, snapshots, versions
from cachelayer.engine.definitions import Definition
from cachelayer.engine.reads import read_rows, with_definition
from cachelayer.exceptions import (
    CachelayerError,
    IndexContainer,
    InvalidDelta,
    MappingError,
    NotNumeric,
    ValueTooLarge,
)

CAS_RETRIES = 20  # compare-and-set attempts before a cache_only write gives up
NUMBER = re.compile(r"\s*([+-]?)([0-9]+)(?:\s|\Z)", re.ASCII)  # what strtoull reads, as memcached takes it


@dataclass(frozen=True)
class Item:
    """What ``get_item`` returns: the value and its memcached metadata."""

    value: str
    flags: int = 0
    cas: int = 0


def absolute_expiry(exptime: int) -> int:
    """Convert a memcached exptime (relative up to 30 days) to a unix time; 0 = never."""
    if not exptime:
        return 0
    if exptime < 0:
        return 1  # already expired
    return int(time.time()) + exptime if exptime <= THIRTY_DAYS else exptime


class Repository:
    """A container seen as memcached: ``cachelayer.repository(name_or_model)``."""

    def __init__(self, target=None):
        self.target = target

    # --- reads -----------------------------------------------------------
    def get_items(self, keys) -> dict:
        """Return ``{key: Item}`` for the keys that exist and have not expired.

        On an index container, a key's value is the primary keys of its rows
        (by primary key), joined by the separator as multi-column keys are;
        a key no row holds is absent.
        """
        keys = list(keys)
        try:
            definition, _, rows = read_rows(self.target, "get", keys)
        except IndexContainer:
            return self._list_items(keys)
        items = {}
        for key, row in rows.items():
            current = dict(zip(definition.stored, row))
            if not is_expired(definition, current):
                items[key] = as_item(definition, current)
        return items

    def _list_items(self, keys) -> dict:
        items = {}
        for key in keys:
            definition, rows = indexes.read_list(self.target, key)
            if rows:
                position = definition.positions[definition.model._meta.pk.attname]
                items[key] = Item(join_parts([str(row[position]) for row in rows], definition.separator))
        return items

    def get_item(self, key) -> Item | None:
        return self.get_items([key]).get(key)

    def get_many(self, keys) -> dict:
        """Return ``{key: value}``: one cache round trip, one SQL query for the misses."""
        return {key: item.value for key, item in self.get_items(keys).items()}

    def get(self, key, default=None):
        item = self.get_item(key)
        return default if item is None else item.value

    # --- writes ----------------------------------------------------------
    def set(self, key, value, flags: int = 0, exptime: int = 0) -> bool:
        return self._apply("set", key, lambda d, cur: (True, _values(d, value, flags, exptime)))

    def add(self, key, value, flags: int = 0, exptime: int = 0) -> bool:
        return self._apply(
            "add", key, lambda d, cur: (False, None) if cur else (True, _values(d, value, flags, exptime))
        )

    def replace(self, key, value, flags: int = 0, exptime: int = 0) -> bool:
        return self._apply(
            "replace", key, lambda d, cur: (True, _values(d, value, flags, exptime)) if cur else (False, None)
        )

    def append(self, key, value) -> bool:
        return self._apply("append", key, partial(_concat, suffix=str(value)))

    def prepend(self, key, value) -> bool:
        return self._apply("prepend", key, partial(_concat, prefix=str(value)))

    def incr(self, key, delta: int = 1) -> int | None:
        """Add ``delta`` to a numeric value (wrapping at 2**64); None when absent."""
        return self._apply("incr", key, partial(_arith, key=key, operation="incr", delta=_checked(delta)))

    def decr(self, key, delta: int = 1) -> int | None:
        """Subtract ``delta``, stopping at 0; None when absent."""
        return self._apply("decr", key, partial(_arith, key=key, operation="decr", delta=-_checked(delta)))

    def cas(self, key, value, cas: int, flags: int = 0, exptime: int = 0) -> bool | None:
        """Store only if the row's cas is still ``cas``: True stored, False changed, None absent."""

        def change(definition, current):
            if definition.cas_field is None:
                raise MappingError(f"cas needs a cas_column on container {definition.name!r}")
            if current is None:
                return None, None
            if current[definition.cas_field.attname] != cas:
                return False, None
            return True, _values(definition, value, flags, exptime)

        return self._apply("cas", key, change)

    def touch(self, key, exptime: int) -> bool:
        def change(definition, current):
            if current is None:
                return False, None
            return True, (
                {definition.expire_field.attname: absolute_expiry(exptime)} if definition.expire_field else {}
            )

        return self._apply("touch", key, change)

    def delete(self, key) -> bool:
        def run(definition, policy):
            _writable(definition, "delete")
            user_key, lookup = _canonical(definition, key)
            if lookup is None:
                return False  # no row can have it
            if touches_database(policy):
                manager = definition.model._base_manager.db_manager(definition.db_alias())
                deleted, _ = manager.filter(**lookup).delete()  # post_delete invalidates
                return deleted > 0
            state = _cached_state(definition, user_key)
            definition.adapter.delete({user_key: [definition.keys.data(state.part)]})
            return state.row not in (versions.MISSING, versions.ABSENT)

        return with_definition(self.target, "delete", run)

    def flush(self) -> None:
        """Outdate every key; with a db_only/caching flush policy also delete every row."""

        def run(definition, policy):
            if touches_database(policy):
                using = definition.db_alias()
                with transaction.atomic(using=using):
                    definition.model._base_manager.db_manager(using).all().delete()
                    invalidation.invalidate_container(using, definition)
            else:
                invalidation.invalidate_container(None, definition)

        with_definition(self.target, "flush", run)

    # --- one path for every write verb ----------------------------------
    def _apply(self, operation: str, key, change):
        def run(definition, policy):
            _writable(definition, operation)
            user_key, lookup = _canonical(definition, key)
            if lookup is None:
                raise MappingError(f"{key!r} is not a valid key for container {definition.name!r}")
            bound = partial(change, definition)
            if touches_database(policy):
                return _apply_in_database(definition, user_key, lookup, bound)
            return _apply_in_cache(definition, user_key, lookup, bound, operation, key)

        return with_definition(self.target, operation, run)


def _canonical(definition: Definition, key) -> tuple[str, dict | None]:
    """Return the canonical user key of ``key`` and its ORM filter (None when no row can have it)."""
    user_key = definition.codec.user_key(key)
    return ("", None) if user_key is None else (user_key, definition.codec.lookup(user_key))


def _cached_state(definition: Definition, user_key: str) -> versions.State:
    """Return what the cache holds for a key: a cache-only verb has nowhere else to
    look, so a server that cannot be read is an error here (CacheUnavailable)."""
    state = versions.fetch(definition, [user_key]).state(user_key)
    if state is None:
        raise definition.adapter.unavailable(None, f"the server of {user_key!r} cannot be read now")
    return state


def _writable(definition: Definition, operation: str) -> None:
    """Refuse a key write on an index container: a key there names many rows."""
    if definition.is_index:
        raise IndexContainer(definition.name, f"{operation} is refused; write the rows through a key container")


def _apply_in_database(definition: Definition, user_key: str, lookup: dict, change):
    """Run a change on the row, locked; then outdate it in every container of
    the model, under the keys it has in the database before and after."""
    using, model = definition.db_alias(), definition.model
    manager = model._base_manager.db_manager(using)
    every, _ = snapshots.mapped_key_attnames(model)
    columns = list({model._meta.pk.attname, *definition.stored, *every})
    for attempt in (1, 2):
        try:
            with transaction.atomic(using=using):
                current = manager.select_for_update().filter(**lookup).values(*columns).first()
                live = None if current is None or is_expired(definition, current) else current
                result, new = change(live)
                if new:
                    if current is None:
                        manager.bulk_create([model(**lookup, **new)])
                        after = manager.filter(**lookup).values(*columns).first()
                    else:
                        manager.filter(**lookup).update(**new)
                        after = {**current, **new}
                    invalidation.record_rows(using, model, [current, after])
                return result
        except IntegrityError as exc:  # a concurrent insert of the same key: once more
            if attempt == 2:
                raise MappingError(f"container {definition.name!r} could not store {user_key!r}: {exc}") from exc


def _apply_in_cache(definition: Definition, user_key: str, lookup: dict, change, operation: str, given):
    """Run a change on the cached payload alone (cache_only); errors name the key as ``given``."""
    adapter = definition.adapter
    for _ in range(CAS_RETRIES):
        state = _cached_state(definition, user_key)
        current = None
        if state.row not in (versions.MISSING, versions.ABSENT):
            current = dict(zip(definition.stored, state.row))
            current = None if is_expired(definition, current) else current
        result, new = change(current)
        if new is None:
            return result
        merged = {**(current or dict.fromkeys(definition.stored)), **lookup, **new}
        payload = versions.payload(definition, state, tuple(merged[a] for a in definition.stored))
        limit = adapter.max_item_size
        if limit and len(payload) > limit:
            raise ValueTooLarge(definition.name, operation, given, len(payload), limit)
        data_key = definition.keys.data(state.part)
        if state.raw is None:
            stored = adapter.add(data_key, payload, definition.timeout, user_key)
        else:
            stored = adapter.compare_and_set(data_key, state.raw, payload, definition.timeout, user_key)
        if stored:
            return result
    raise CachelayerError(f"container {definition.name!r}: too many concurrent writers of {given!r}")


def is_expired(definition: Definition, current: dict) -> bool:
    """Whether a row's expire-time column (memcached's exptime, InnoDB plugin style) has passed."""
    if definition.expire_field is None:
        return False
    expiry = current.get(definition.expire_field.attname) or 0
    return 0 < expiry <= time.time()


def _render(definition: Definition, current: dict) -> str:
    return definition.separator.join(
        "" if current[f.attname] is None else str(current[f.attname]) for f in definition.value_fields
    )


def as_item(definition: Definition, current: dict) -> Item:
    """The memcached item a row is: its value columns joined, its flags and cas columns."""
    flags = current[definition.flags_field.attname] if definition.flags_field else 0
    cas = current[definition.cas_field.attname] if definition.cas_field else 0
    return Item(_render(definition, current), flags or 0, cas or 0)


def _parse(definition: Definition, value) -> dict:
    """Split a value over the value columns: extras ignored; a missing (or, for a
    non-text column, empty) part is NULL, the column's default, or filled as
    ``save()`` fills it (``auto_now`` always is: now; ``auto_now_add`` and
    ``db_default`` are left to the insert, an update keeps the row's)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    fields = definition.value_fields
    parts = [str(value)] if len(fields) == 1 else str(value).split(definition.separator)
    values = {}
    for index, field in enumerate(fields):
        part = parts[index] if index < len(parts) else None
        if part == "" and field.get_internal_type() not in ("CharField", "TextField"):
            part = None
        if getattr(field, "auto_now", False):
            values[field.attname] = field.pre_save(definition.model(), add=True)  # as save(): now, whatever given
            continue
        if part is None and not field.null:
            if getattr(field, "auto_now_add", False) or field.db_default is not NOT_PROVIDED:
                continue  # the insert fills it; an update keeps the row's
            if not field.has_default():
                raise MappingError(
                    f"container {definition.name!r}: no value for NOT NULL column {field.name!r} "
                    f"({len(parts)} part(s) for {len(fields)} column(s)); a value is "
                    f"{definition.separator.join(_wanted(field) for field in fields)!r}"
                )
            values[field.attname] = field.get_default()
            continue
        try:
            values[field.attname] = None if part is None else field.to_python(part)
        except ValidationError as exc:
            raise MappingError(f"container {definition.name!r}: column {field.name!r}: {exc.messages[0]}") from exc
    return values


def _wanted(field) -> str:
    """A value column as an error names it: [optional] when a missing part is filled."""
    filled = field.null or field.has_default() or field.db_default is not NOT_PROVIDED
    filled = filled or getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    return f"[{field.name}]" if filled else field.name


def _values(definition: Definition, value, flags: int, exptime: int) -> dict:
    values = _parse(definition, value)
    if definition.flags_field:
        values[definition.flags_field.attname] = flags
    if definition.expire_field:
        values[definition.expire_field.attname] = absolute_expiry(exptime)
    if definition.cas_field:
        values[definition.cas_field.attname] = new_counter()
    return values


def _concat(definition: Definition, current, prefix: str = "", suffix: str = ""):
    if current is None:
        return False, None
    values = _parse(definition, prefix + _render(definition, current) + suffix)
    if definition.cas_field:
        values[definition.cas_field.attname] = new_counter()
    return True, values


def _checked(delta) -> int:
    """Return an incr/decr delta memcached would take (0 to 2**64-1), else raise InvalidDelta."""
    if isinstance(delta, bool) or not isinstance(delta, int) or not 0 <= delta < UINT64:
        raise InvalidDelta(delta)
    return delta


def _number(text: str) -> int | None:
    """Return the number memcached's incr reads in a value, or None when it finds none.

    As memcached's strtoull: leading whitespace and a ``+`` are skipped and
    whatever follows whitespace after the digits is ignored (``"12 abc"`` is 12).
    Only ASCII digits count, and nothing past 2**64-1 or below 0 (``-0`` is 0).
    """
    match = NUMBER.match(text)
    if match is None:
        return None
    sign, number = match.group(1), int(match.group(2))
    return None if number >= UINT64 or (sign == "-" and number) else number


def _arith(definition: Definition, current, key, operation: str, delta: int):
    if current is None:
        return None, None
    number = _number(_render(definition, current))
    if number is None:
        raise NotNumeric(definition.name, str(key), operation)
    number += delta
    number = number % UINT64 if delta > 0 else max(0, number)
    values = _parse(definition, str(number))
    if definition.cas_field:
        values[definition.cas_field.attname] = new_counter()
    return number, values
