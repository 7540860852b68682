"""CachedModelMixin: ``Model.cached.get(key)`` and write paths that invalidate.

No Django class is patched: the mixin brings its own manager and queryset,
and the paths that send no signal (update, bulk_create, bulk_update)
invalidate from the queryset.
"""

from __future__ import annotations

from django.db import models, router, transaction

from cachelayer import conf
from cachelayer.containers import registry
from cachelayer.exceptions import MappingError
from cachelayer.instances import builder
from cachelayer.invalidation import invalidate_container, invalidate_many
from cachelayer.operations import read_rows


class CachedQuerySet(models.QuerySet):
    """A QuerySet whose bulk write paths invalidate what they change."""

    def update(self, **kwargs):
        definitions = registry.for_model(self.model)
        if not definitions:
            return super().update(**kwargs)
        changes_key = any(f.name in kwargs or f.attname in kwargs for d in definitions for f in d.key_fields)
        limit = conf.get("UPDATE_KEYS_LIMIT")
        with transaction.atomic(using=self.db, savepoint=False):
            if changes_key:
                rows = None
            else:  # lock the rows so their keys cannot change before the update
                names = list({f.attname for d in definitions for f in d.key_fields})
                rows = list(self.select_for_update().order_by().values_list("pk", *names)[: limit + 1])
            if rows is None or len(rows) > limit:
                count = super().update(**kwargs)
                for definition in definitions:
                    invalidate_container(self.db, definition)
                return count
            count = super(CachedQuerySet, self.filter(pk__in=[row[0] for row in rows])).update(**kwargs)
            values = [dict(zip(names, row[1:])) for row in rows]
            invalidate_many(self.db, {d: [d.key_from(v) for v in values] for d in definitions})
            return count

    update.alters_data = True

    def bulk_create(self, objs, *args, **kwargs):
        objs = super().bulk_create(objs, *args, **kwargs)
        _invalidate_objects(self.db, self.model, objs, changed_fields=None)
        return objs

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        count = super().bulk_update(objs, fields, *args, **kwargs)
        _invalidate_objects(self.db, self.model, objs, changed_fields=fields)
        return count


def _invalidate_objects(using, model, objs, changed_fields) -> None:
    changes = {}
    for definition in registry.for_model(model):
        key_names = {n for f in definition.key_fields for n in (f.name, f.attname)}
        unknown = any(getattr(obj, f.attname) is None for obj in objs for f in definition.key_fields)
        if unknown or (changed_fields and key_names & set(changed_fields)):
            invalidate_container(using, definition)
        else:
            changes[definition] = [definition.key_of_instance(obj) for obj in objs]
    invalidate_many(using, changes)  # one round trip per cache for every container


CachedManager = models.Manager.from_queryset(CachedQuerySet)


class CachedAccess:
    """``Model.cached``: read model instances through the cache by key."""

    def __init__(self, model, container: str | None = None):
        self.model = model
        self.target = container or model  # None: the model's own container

    def container(self, name: str) -> CachedAccess:
        """Read through another container that maps this model, e.g. one keyed
        by a unique column: ``User.cached.container("users_by_email").get(email)``."""
        return CachedAccess(self.model, name)

    def get(self, key):
        """Return the instance with this key; raise ``Model.DoesNotExist`` when absent."""
        found = self.get_many([key])
        if not found:
            raise self.model.DoesNotExist(f"{self.model._meta.object_name} with key {key!r} does not exist")
        return next(iter(found.values()))

    def get_many(self, keys) -> dict:
        """Return ``{key: instance}`` for the keys that exist: one cache round
        trip, and one SQL query for all the misses."""
        definition, rows = read_rows(self.target, "get", list(keys))
        if definition.model._meta.concrete_model is not self.model._meta.concrete_model:
            raise MappingError(
                f"container {definition.name!r} maps {definition.model._meta.label}, not {self.model._meta.label}"
            )
        build = builder(self.model, definition.db_alias(), definition.stored)
        return {key: build(row) for key, row in rows.items()}


class _CachedDescriptor:
    def __get__(self, instance, owner):
        if instance is not None:
            raise AttributeError("use Model.cached, not instance.cached")
        access = owner.__dict__.get("_cachelayer_access")
        if access is None:
            access = CachedAccess(owner)
            setattr(owner, "_cachelayer_access", access)
        return access


class CachedModelMixin(models.Model):
    """Give a model ``Model.cached.get(key)`` and invalidation on every write path.

    ``cache_key_fields`` / ``cache_value_fields`` shape the container created
    for the model after migrate (default: the primary key, the whole row).
    """

    cache_key_fields: str | None = None
    cache_value_fields: tuple[str, ...] = ()

    objects = CachedManager()
    cached = _CachedDescriptor()

    class Meta:
        abstract = True

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        # the loaded values, for the old keys if a key field changes (receivers.py);
        # a dict is built only when such a row is saved, never per row read
        instance._cachelayer_loaded = (field_names, values)
        return instance

    def invalidate(self, using: str | None = None) -> None:
        """Outdate this row's cached copies (after raw SQL, say)."""
        using = using or self._state.db or router.db_for_write(type(self), instance=self)
        invalidate_many(using, {d: [d.key_of_instance(self)] for d in registry.for_model(type(self))})
