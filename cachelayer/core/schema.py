"""The schema fingerprint a payload carries: what its values depend on.

A payload is a hit only under the fingerprint it was filled with, so a
deploy whose models store or return other values (a DecimalField rounded to
fewer places, a shorter CharField, another field class and so its
``from_db_value``) turns old payloads into misses. A field is described by
``deconstruct()``, the complete description migrations are written from,
less the attributes Django itself says do not reach the column
(``Field.non_db_attrs``: labels, help, choices, validators, on_delete,
related names), which change no stored or returned value. ``db_column`` is
kept: another column holds other values. A foreign key also carries the
field it points to (its values are that field's).

Values are written with the serializer migrations use, so a fingerprint is
the same in every process and Python run (sets are sorted, callables named
by their import path); no ``repr()`` with an address or hash order.
"""

from __future__ import annotations

import hashlib
import weakref

from django.db.migrations.serializer import serializer_factory

KEPT_NON_DB_ATTRS = {"db_column"}  # in non_db_attrs, yet another column holds other values


def _written(value) -> str:
    """Return ``value`` as a migration file would write it, or its type's name when no migration could."""
    try:
        return serializer_factory(value).serialize()[0]
    except ValueError:  # a lambda, a local class: named by what it is, never by its address
        named = value if callable(value) else type(value)
        return f"{getattr(named, '__module__', '?')}.{getattr(named, '__qualname__', type(value).__qualname__)}"


def describe(field, follow: bool = True) -> tuple:
    """Return what the values of ``field`` depend on, as plain strings (with
    the fields a foreign key points to when ``follow``)."""
    _, path, args, kwargs = field.deconstruct()
    ignored = set(field.non_db_attrs) - KEPT_NON_DB_ATTRS
    parameters = tuple((name, _written(value)) for name, value in sorted(kwargs.items()) if name not in ignored)
    targets = getattr(field, "foreign_related_fields", ()) if follow and field.concrete else ()
    return (
        field.attname,
        field.column,
        path,
        field.get_internal_type(),
        tuple(map(_written, args)),
        parameters,
        tuple(describe(target, follow=False) for target in targets),
    )


# model class -> (its concrete_fields, them described): describing (deconstruct() of every
# field) was most of a registry load's cost. Kept while Django keeps the same
# concrete_fields: whatever changes a model's fields expires it (Options._expire_cache,
# apps.clear_cache()), and the fields are described again.
_described: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def fingerprint(model, *mapping) -> str:
    """Return the fingerprint of a container's ``mapping`` onto ``model``'s table and fields."""
    meta = model._meta
    concrete, fields = _described.get(model, (None, None))
    if concrete is not meta.concrete_fields:
        concrete = meta.concrete_fields
        fields = [describe(field) for field in concrete]
        _described[model] = (concrete, fields)
    described = (meta.label, meta.db_table, mapping, fields)
    return hashlib.blake2b(repr(described).encode(), digest_size=6).hexdigest()
