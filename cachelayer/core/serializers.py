"""Encode payloads (plain field values) to bytes and back.

``pickle`` is the fast default. ``json`` executes nothing on load, for caches
that untrusted writers share; it tags the non-JSON types Django fields use.
A payload that cannot be decoded is a miss, never an error (see versions.py).
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import pickle
import uuid

from cachelayer.core import conf


class PickleSerializer:
    def dumps(self, payload) -> bytes:
        return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes):
        return pickle.loads(data)


_ENCODERS = [
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
    for kind, tag, encode, _ in _ENCODERS:
        if isinstance(value, kind):
            return {"$": tag, "v": encode(value)}
    if isinstance(value, (tuple, list)):
        return [_encode(item) for item in value]
    return value


def _decode(value):
    if isinstance(value, dict):
        return _DECODERS[value["$"]](value["v"])
    if isinstance(value, list):
        return tuple(_decode(item) for item in value)
    return value


class JSONSerializer:
    def dumps(self, payload) -> bytes:
        return json.dumps(_encode(payload), separators=(",", ":")).encode()

    def loads(self, data: bytes):
        return _decode(json.loads(data))


SERIALIZERS = {"pickle": PickleSerializer, "json": JSONSerializer}


def get_serializer():
    """Return the serializer CACHELAYER['SERIALIZER'] names."""
    return SERIALIZERS[conf.get("SERIALIZER")]()
