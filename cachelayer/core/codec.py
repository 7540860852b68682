"""User keys: from a row's key column values to the string a container is
addressed by, and back.

A one-column key is the column's value as a string; several columns join
their parts with the ``separator`` option (keys.py escapes it). No I/O and
no settings: a container's definition (engine/definitions.py) builds one.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from cachelayer.core.keys import join_parts, split_parts

UNLISTED = object()  # key_or_none of an index row with a NULL key column: in no list, nothing to outdate


class KeyCodec:
    """The five conversions between key column values and a container's user key."""

    def __init__(self, key_fields: list, separator: str, positions: dict[str, int], is_index: bool):
        self.key_fields, self.separator, self.positions, self.is_index = key_fields, separator, positions, is_index
        self._attnames = [f.attname for f in key_fields]

    def user_key(self, key) -> str:
        """Return the canonical string form of a key.

        Several key columns take a tuple of parts, or the string ``join_parts``
        makes of them (what cache_serve clients send).
        """
        kind = type(key)
        if kind is str:
            return key
        if kind is int:
            return str(key)
        parts = key if isinstance(key, (tuple, list)) else (key,)
        if len(self.key_fields) == 1 or len(parts) == 1:
            return parts[0] if isinstance(parts[0], str) else str(parts[0])
        return join_parts([str(part) for part in parts], self.separator)

    def lookup(self, user_key: str) -> dict | None:
        """Return the ORM filter for a key, or None when no row can have it."""
        parts = [user_key] if len(self.key_fields) == 1 else split_parts(user_key, self.separator)
        if parts is None or len(parts) != len(self.key_fields):
            return None
        try:
            return {f.attname: f.to_python(part) for f, part in zip(self.key_fields, parts)}
        except ValidationError:
            return None

    def key_from(self, values) -> str:
        """Return the user key of a row given as ``{attname: value}``."""
        return self.user_key([values[attname] for attname in self._attnames])

    def key_or_none(self, values: dict) -> str | object | None:
        """Return the user key of a row snapshot, or None when it lacks a key column
        (UNLISTED for an index row whose key column is NULL)."""
        if all(attname in values for attname in self._attnames):
            if self.is_index and any(values[attname] is None for attname in self._attnames):
                return UNLISTED
            return self.key_from(values)
        return None

    def key_of(self, row) -> str:
        """Return the user key of a stored row (a tuple in ``stored`` order)."""
        return self.user_key([row[self.positions[attname]] for attname in self._attnames])
