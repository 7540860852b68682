"""Row snapshots (``{attname: value}``): what a write needs to know to outdate a row.

A row is cached under each container's key. A write must outdate the key the
row has in the database when it is written (old) and the key it ends with
(new). An instance in memory cannot tell the old one: it may have been built
by hand, loaded without its key columns, or loaded before another writer
changed them. So the key columns of containers not keyed by the primary key
are read from the database, locked when inside ``atomic``, right before the
write. Containers keyed by the primary key need no query.
"""

from __future__ import annotations

from django.db import connections

from cachelayer.engine.definitions import Definition
from cachelayer.engine.registry import registry


def key_attnames(definitions: list[Definition]) -> set[str]:
    """Return the attnames of every key column of ``definitions``."""
    return {f.attname for definition in definitions for f in definition.key_fields}


def needs_database(definitions: list[Definition]) -> set[str]:
    """Return the key attnames an instance cannot vouch for (all but the primary key)."""
    return {
        f.attname for d in definitions for f in d.key_fields if not (len(d.key_fields) == 1 and f.primary_key)
    }


def loaded(instance) -> dict:
    """Return the concrete field values an instance holds (deferred ones left out)."""
    values = instance.__dict__
    return {f.attname: values[f.attname] for f in instance._meta.concrete_fields if f.attname in values}


def read(model, using: str, pks, attnames) -> dict:
    """Return ``{pk: {attname: value}}`` for the rows of ``pks`` as the database has them now.

    Locks them (SELECT ... FOR UPDATE) inside ``atomic``, so that no other
    writer can change their keys between this read and the write.
    """
    pks = [pk for pk in pks if pk is not None]
    if not pks:
        return {}
    pk_name = model._meta.pk.attname
    rows = model._base_manager.using(using).filter(pk__in=pks)
    if connections[using].in_atomic_block:
        rows = rows.select_for_update()
    return {row[pk_name]: row for row in rows.values(pk_name, *(set(attnames) - {pk_name}))}


def mapped_key_attnames(model) -> tuple[set[str], set[str]]:
    """Return (every key attname of the model's containers, those only the database knows)."""
    definitions = registry.for_model(model)
    return key_attnames(definitions), needs_database(definitions)
