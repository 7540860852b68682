"""User keys: from key column values, in any form the database accepts, to
the one string a container is addressed by, and back.

Every key is canonical: each part goes through its field's own conversion
(``to_python``, then ``get_prep_value``: ``"07"`` and ``7`` are the integer
pk 7, a UUID string in any spelling is the UUID, a custom field's value is
what it stores, never its ``str()``), then, for a string, through the fold of
its column's collation when the database holds different strings equal
(engine/collations.py builds the folds: this module does no I/O). A
one-column key is that part; several columns join their parts with the
``separator`` option (keys.py escapes it). A key no row can have (``"abc"``
for an integer pk, a part missing) has no user key: ``user_key`` returns None,
and every API answers it as absent.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import models

from cachelayer.core.keys import join_parts, split_parts

UNLISTED = object()  # key_or_none of a row with a NULL key column: in no list, nothing to outdate
_INVALID = (ValidationError, TypeError, ValueError, ArithmeticError)  # what a field's conversion raises


def column_type(field):
    """Return the field whose type the column has: a foreign key's target, followed to the
    end (a multi-table grandchild's pk points at its parent's, itself a parent_ptr)."""
    while field.is_relation:
        field = field.target_field
    return field


def _fast_type(field, fold):
    """Return the Python type whose values are their own canonical part for ``field``
    (int for Django's own integer fields, str for char fields without a fold), or None."""
    typed = column_type(field)
    own = type(typed).to_python, type(typed).get_prep_value
    if isinstance(typed, models.IntegerField) and own == (
        models.IntegerField.to_python,
        models.IntegerField.get_prep_value,
    ):
        return int
    if (
        fold is None
        and isinstance(typed, models.CharField)
        and own == (models.CharField.to_python, models.CharField.get_prep_value)
    ):
        return str
    return None


def _text(value, field) -> str:
    """Return the key text of a field's prepared value (types a key column may have).

    A decimal is written with the field's ``decimal_places`` (``1.1`` and ``1.10``
    are one row of a ``DecimalField(decimal_places=2)``; ``1.105`` is none); an
    aware datetime in UTC, so the ORM's value and the follower's agree.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, decimal.Decimal):
        places = getattr(field, "decimal_places", None)
        exact = value.quantize(decimal.Decimal(1).scaleb(-places)) if places is not None else value.normalize()
        if exact != value:
            raise ValueError(f"{value} has more than {places} decimal places")
        return format(exact, "f")
    if isinstance(value, datetime.datetime):
        return (value.astimezone(datetime.UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    raise TypeError(f"a key part cannot be a {type(value).__name__}")


class KeyCodec:
    """The conversions between key column values and a container's user key."""

    def __init__(self, key_fields: list, separator: str, positions: dict[str, int], is_index: bool, folds=None):
        self.key_fields, self.separator, self.positions, self.is_index = key_fields, separator, positions, is_index
        self.folds = list(folds or [None] * len(key_fields))  # per key field: a callable(text, offline) or None
        self._attnames = [f.attname for f in key_fields]
        self._fast = [_fast_type(f, fold) for f, fold in zip(key_fields, self.folds)]
        # A one-column key of such a type is its own user key: user_key's first test, every read.
        self._single = self._fast[0] if len(key_fields) == 1 else None
        self._folded = [fold for fold in self.folds if fold is not None]

    def exact(self, offline: bool = False) -> bool:
        """Return False when a key column's collation cannot be folded exactly (reads then go to the database)."""
        return all(fold.exact(offline) for fold in self._folded) if self._folded else True

    def part(self, index: int, value, offline: bool = False) -> str:
        """Return the canonical text of one key part; raise ValueError when no row can hold ``value``."""
        if type(value) is self._fast[index]:
            return value if type(value) is str else str(value)
        field, fold = self.key_fields[index], self.folds[index]
        try:
            prepared = field.get_prep_value(field.to_python(value))
            text = _text(prepared, column_type(field))
        except _INVALID as exc:
            raise ValueError(f"{value!r} is no value of {field.name}") from exc
        return fold(text, offline) if fold is not None and isinstance(prepared, str) else text

    def user_key(self, key, offline: bool = False) -> str | None:
        """Return the canonical user key of ``key``, or None when no row can have it.

        Several key columns take a tuple of parts, or the string ``join_parts``
        makes of them (what cache_serve clients send). ``offline``: raise
        LookupError instead of asking the database how to fold a string.
        """
        if type(key) is self._single:  # what part() answers for it, without the parts
            return key if type(key) is str else str(key)
        parts: Sequence | None
        if len(self.key_fields) == 1:
            parts = key if isinstance(key, (tuple, list)) else (key,)
        elif isinstance(key, str):
            parts = split_parts(key, self.separator)
        else:
            parts = key if isinstance(key, (tuple, list)) else None
        if parts is None or len(parts) != len(self.key_fields):
            return None
        try:
            texts = [self.part(i, value, offline) for i, value in enumerate(parts)]
        except ValueError:
            return None
        return texts[0] if len(texts) == 1 else join_parts(texts, self.separator)

    def lookup(self, user_key: str) -> dict | None:
        """Return the ORM filter for a canonical key, or None when no row can have it."""
        parts = [user_key] if len(self.key_fields) == 1 else split_parts(user_key, self.separator)
        if parts is None or len(parts) != len(self.key_fields):
            return None
        try:
            return {f.attname: f.to_python(part) for f, part in zip(self.key_fields, parts)}
        except ValidationError:
            return None

    def key_from(self, values) -> str | None:
        """Return the user key of a row given as ``{attname: value}`` (None: it has none)."""
        return self.user_key(tuple(values[attname] for attname in self._attnames))

    def key_or_none(self, values: dict) -> str | object | None:
        """Return the user key of a row snapshot: None when it lacks a key column or holds
        a value no key can be made of (its container's generation is bumped), UNLISTED
        when a key column is NULL (no such row is cached: nothing to outdate)."""
        if not all(attname in values for attname in self._attnames):
            return None
        if any(values[attname] is None for attname in self._attnames):
            return UNLISTED
        return self.key_from(values)

    def key_of(self, row) -> str | None:
        """Return the user key of a stored row (a tuple in ``stored`` order)."""
        return self.user_key(tuple(row[self.positions[attname]] for attname in self._attnames))
