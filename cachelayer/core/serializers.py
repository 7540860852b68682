"""Encode payloads (plain field values) to bytes and back.

``pickle`` is the fast default. ``json`` executes nothing on load, for caches
that untrusted writers share; it carries None, bool, int, float, str, and
tags the other types Django's own fields return (datetime, date, time,
timedelta, Decimal, UUID, bytes, memoryview), and the lists and objects
inside values (a JSONField's), so that a row's tuple, a value's list and a
value's object each come back as what they were. A field whose values are
other objects declares how they round-trip: ``cache_encode(value)`` returns
a value the serializer carries, ``cache_decode(value)`` the field's value
again (neither sees None). A payload that cannot be decoded is a miss, never
an error; one that cannot be encoded is not stored (see versions.py).
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import pickle
import uuid
from collections.abc import Callable
from typing import Any

from cachelayer.core import conf

_UTC = datetime.UTC
_EPOCHS = {"U": datetime.datetime(1970, 1, 1, tzinfo=_UTC), "N": datetime.datetime(1970, 1, 1)}
_MICROSECOND = datetime.timedelta(microseconds=1)


def _flatten(value):
    """Return ``(tag, plain value)`` for a Decimal or a UTC/naive datetime, else None."""
    kind = type(value)
    if kind is decimal.Decimal:
        return "D", str(value)
    if kind is datetime.datetime and (value.tzinfo is None or value.tzinfo is _UTC):
        tag = "N" if value.tzinfo is None else "U"
        return tag, (value - _EPOCHS[tag]) // _MICROSECOND
    return None


_UNFLATTEN: dict[str, Callable[[Any], Any]] = {
    "D": decimal.Decimal,
    "U": lambda us: _EPOCHS["U"] + datetime.timedelta(microseconds=us),
    "N": lambda us: _EPOCHS["N"] + datetime.timedelta(microseconds=us),
}


class PickleSerializer:
    """pickle, with a row's Decimals and datetimes stored as plain values.

    Unpickling a Decimal or an aware datetime looks up classes and calls
    constructors through ``REDUCE`` (~2 us a row of the two, most of a
    payload's decode); a ``str`` and an integer count of microseconds cost
    little, and ``(position, tag)`` pairs after the row say what to rebuild.
    Both exact. Such a payload is ``(gen, ver, schema, row, pairs)``: a
    process that expects four items counts it a miss, never a wrong hit.
    """

    def dumps(self, payload) -> bytes:
        row = payload[3]
        if isinstance(row, tuple) and row:  # a row; index entries (lists, counts) go as they are
            pairs, plain = [], list(row)
            for position, value in enumerate(row):
                flat = _flatten(value)
                if flat is not None:
                    pairs.append((position, flat[0]))
                    plain[position] = flat[1]
            if pairs:
                payload = (*payload[:3], tuple(plain), tuple(pairs))
        return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)

    def carries(self, field) -> bool:
        """Return True: pickle carries any object whose class it can import (what it
        cannot is found at fill time, see versions.py)."""
        return True

    def loads(self, data: bytes):
        payload = pickle.loads(data)
        if len(payload) == 5:
            gen, ver, schema, row, pairs = payload
            row = list(row)
            for position, tag in pairs:
                row[position] = _UNFLATTEN[tag](row[position])
            return gen, ver, schema, tuple(row)
        return payload


_ENCODERS: list[tuple[type, str, Callable[[Any], Any], Callable[[Any], Any]]] = [
    (datetime.datetime, "dt", lambda v: v.isoformat(), datetime.datetime.fromisoformat),
    (datetime.date, "d", lambda v: v.isoformat(), datetime.date.fromisoformat),
    (datetime.time, "t", lambda v: v.isoformat(), datetime.time.fromisoformat),
    (datetime.timedelta, "td", lambda v: v.total_seconds(), lambda v: datetime.timedelta(seconds=v)),
    (decimal.Decimal, "dec", str, decimal.Decimal),
    (uuid.UUID, "uuid", str, uuid.UUID),
    (bytes, "b", lambda v: base64.b64encode(v).decode(), base64.b64decode),
    (memoryview, "b", lambda v: base64.b64encode(bytes(v)).decode(), base64.b64decode),
]
_DECODERS = {tag: decode for _, tag, _, decode in _ENCODERS}


def _encode(value):
    """A tuple (the payload, a row) is a JSON array; every object is a tag: ``{"$": tag, "v": ...}``."""
    if isinstance(value, tuple):
        return [_encode(item) for item in value]
    if isinstance(value, list):
        return {"$": "list", "v": [_encode(item) for item in value]}
    if isinstance(value, dict):
        return {"$": "map", "v": {key: _encode(item) for key, item in value.items()}}
    for kind, tag, encode, _ in _ENCODERS:
        if isinstance(value, kind):
            return {"$": tag, "v": encode(value)}
    return value


def _decode(value):
    if isinstance(value, list):
        return tuple(_decode(item) for item in value)
    if isinstance(value, dict):
        tag, inner = value["$"], value["v"]
        if tag == "list":
            return [_decode(item) for item in inner]
        if tag == "map":
            return {key: _decode(item) for key, item in inner.items()}
        return _DECODERS[tag](inner)
    return value


class JSONSerializer:
    # Internal types whose values (as the database drivers return them) are among the types above.
    CARRIED = frozenset(
        {
            *("AutoField", "BigAutoField", "SmallAutoField", "BigIntegerField", "IntegerField", "SmallIntegerField"),
            *("PositiveBigIntegerField", "PositiveIntegerField", "PositiveSmallIntegerField", "BooleanField"),
            *("CharField", "TextField", "SlugField", "EmailField", "URLField", "FileField", "FilePathField"),
            *("ImageField", "GenericIPAddressField", "IPAddressField", "DateField", "DateTimeField", "TimeField"),
            *("DurationField", "DecimalField", "FloatField", "UUIDField", "BinaryField", "JSONField", "HStoreField"),
        }
    )

    def carries(self, field) -> bool:
        """Return True when every value ``field`` reads can go through this serializer.

        A field that converts what the database returns (``from_db_value``,
        outside Django's own fields) may return any object; other fields
        return what the driver gives for their internal type.
        """
        if declares_round_trip(field):
            return True
        if field.is_relation:
            return all(map(self.carries, getattr(field, "foreign_related_fields", ())))
        if getattr(field, "generated", False):  # GeneratedField: its output field's values
            return self.carries(field.output_field)
        if field.get_internal_type() == "ArrayField":  # lists of its base field's values
            return self.carries(field.base_field)
        converter = getattr(field, "from_db_value", None)
        if converter is not None and not converter.__module__.startswith("django.db.models."):
            return False
        return field.get_internal_type() in self.CARRIED

    def dumps(self, payload) -> bytes:
        return json.dumps(_encode(payload), separators=(",", ":")).encode()

    def loads(self, data: bytes):
        return _decode(json.loads(data))


def declares_round_trip(field) -> bool:
    return callable(getattr(field, "cache_encode", None)) and callable(getattr(field, "cache_decode", None))


class Conversions:
    """The ``cache_encode``/``cache_decode`` of the fields of a stored row that declare them.

    ``of`` returns None when no field does (nothing to do per payload). An
    index payload is a tuple of rows, or the ``(length,)`` marker of a list too
    long to store (engine/indexes.py): only the rows are converted.
    """

    def __init__(self, fields: dict[int, Any], is_index: bool):
        self.fields, self.is_index = fields, is_index

    @classmethod
    def of(cls, stored_fields, is_index: bool) -> Conversions | None:
        fields = {position: f for position, f in enumerate(stored_fields) if declares_round_trip(f)}
        return cls(fields, is_index) if fields else None

    def _row(self, row: tuple, method: str) -> tuple:
        converted = list(row)
        for position, field in self.fields.items():
            if converted[position] is not None:
                converted[position] = getattr(field, method)(converted[position])
        return tuple(converted)

    def _data(self, data, method: str):
        if not self.is_index:
            return self._row(data, method)
        return tuple(self._row(row, method) if isinstance(row, tuple) else row for row in data)

    def encode(self, data):
        """Return a row (or an index's rows) with each declaring field's value as it travels."""
        return self._data(data, "cache_encode")

    def decode(self, data):
        """Return a row (or an index's rows) as ``encode`` found it."""
        return self._data(data, "cache_decode")


SERIALIZERS = {"pickle": PickleSerializer, "json": JSONSerializer}


def get_serializer():
    """Return the serializer CACHELAYER['SERIALIZER'] names."""
    return SERIALIZERS[conf.get("SERIALIZER")]()
