"""Lists through the cache: ``Model.cached.filter(...)`` over index containers,
and ``instance.cached_related(name)`` for reverse foreign keys and m2m.

An index container maps a value of its (non-unique) key columns to the rows
that hold it (engine/indexes.py): a hit is one cache round trip and no SQL.
A filter names exactly the key columns of one index; anything else is
refused, so that a list is never quietly read from the database.
"""

from __future__ import annotations

from django.db import models

from cachelayer.engine import indexes
from cachelayer.engine.reads import read_rows
from cachelayer.engine.registry import registry
from cachelayer.exceptions import MappingError
from cachelayer.instances import builder


def _attnames(model, lookups: dict) -> dict:
    """Return ``{attname: value}`` for ``filter`` arguments (a field name or attname; an instance for a relation)."""
    values = {}
    for name, value in lookups.items():
        try:
            field = model._meta.get_field(name)
        except Exception:
            raise MappingError(f"{model._meta.label} has no field {name!r} to filter on") from None
        if isinstance(value, models.Model) and field.is_relation:
            value = getattr(value, field.target_field.attname)
        values[field.attname] = value
    return values


def index_for(model, attnames) -> str:
    """Return the name of the enabled index container keyed by exactly ``attnames``."""
    wanted = set(attnames)
    available = sorted((d for d in registry.for_model(model) if d.is_index and d.enabled), key=lambda d: d.name)
    for definition in available:
        if {f.attname for f in definition.key_fields} == wanted:
            return definition.name
    offered = "; ".join(f"{d.name} ({', '.join(f.name for f in d.key_fields)})" for d in available) or "none"
    raise MappingError(
        f"no index container of {model._meta.label} is keyed by {', '.join(sorted(wanted))}: "
        f"indexes: {offered}. Declare one in cache_indexes (or add it in the admin)."
    )


def cached_filter(model, **lookups) -> list:
    """Return the instances whose columns equal ``lookups``, ordered by primary key, through an index container.

    A NULL value is in no cached list: such a filter is answered by the database.
    """
    values = _attnames(model, lookups)
    name = index_for(model, values)
    if any(value is None for value in values.values()):
        return list(model._base_manager.filter(**values).order_by("pk"))
    definition = registry.get(name)  # reloads once if another thread's reload dropped it meanwhile
    definition, rows = indexes.read_list(name, tuple(values[f.attname] for f in definition.key_fields))
    build = builder(model, definition.db_alias(), definition.stored)
    return [build(row) for row in rows]


def _by_primary_key(model) -> str | None:
    """Return a container name that maps ``model`` keyed by its primary key alone, or None."""
    pk = model._meta.pk.attname
    for definition in sorted(registry.for_model(model), key=lambda d: d.name):
        if definition.enabled and [f.attname for f in definition.key_fields] == [pk]:
            return definition.name
    return None


def through_sides(relation) -> tuple:
    """Return ``(through model, source column, target column)`` of an m2m field or its reverse.

    The reverse side is told by its class: Django 6.0 no longer counts a
    ManyToManyField as ``concrete`` (it has no column of its own).
    """
    reverse = isinstance(relation, models.ForeignObjectRel)
    m2m = relation.field if reverse else relation
    source, target = m2m.m2m_field_name(), m2m.m2m_reverse_field_name()
    return (m2m.remote_field.through, target, source) if reverse else (m2m.remote_field.through, source, target)


def cached_related(instance, name: str) -> list:
    """Return the objects a reverse foreign key or an m2m relation of ``instance`` names, through the cache.

    Reverse foreign key (``post.cached_related("comments")``): the related
    model's index on the foreign key, one round trip on a hit. m2m
    (``group.cached_related("members")``, either side): the through model's
    index on the source column, then one multi-get of the targets by primary
    key; the targets are ordered by primary key. A target model no container
    maps by its primary key (``cache_key_fields = "sku"``) is read from the
    database by primary key: one query, still fresh.
    """
    relation = type(instance)._meta.get_field(name)
    if relation.one_to_many and relation.auto_created:
        field = relation.field
        return cached_filter(relation.related_model, **{field.name: getattr(instance, field.target_field.attname)})
    if not relation.many_to_many:
        raise MappingError(f"{name!r} is not a reverse foreign key nor a many-to-many relation")
    through, source, target = through_sides(relation)
    source_field, target_field = through._meta.get_field(source), through._meta.get_field(target)
    links = cached_filter(through, **{source: getattr(instance, source_field.target_field.attname)})
    ids = sorted({getattr(link, target_field.attname) for link in links})
    related = target_field.related_model
    if not ids:
        return []
    by_pk = _by_primary_key(related)
    if by_pk is None:
        return list(related._base_manager.filter(pk__in=ids).order_by("pk"))
    definition, using, rows = read_rows(by_pk, "get", ids)
    build = builder(related, using, definition.stored)
    return [build(rows[pk]) for pk in ids if pk in rows]
