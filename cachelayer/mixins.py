"""CachedModelMixin: ``Model.cached.get(key)`` and write paths that invalidate.

No Django class is patched: the mixin brings its own manager and queryset,
and the paths that send no signal (update, bulk_create, bulk_update)
invalidate from the queryset. What each write outdates is decided in
capture.py.
"""

from __future__ import annotations

from contextlib import nullcontext

from asgiref.sync import sync_to_async
from django.db import models, router, transaction

from cachelayer import capture
from cachelayer.engine import snapshots
from cachelayer.engine.reads import read_rows
from cachelayer.exceptions import MappingError
from cachelayer.instances import builder
from cachelayer.lists import cached_filter, cached_related


class CachedQuerySet(models.QuerySet):
    """A QuerySet whose bulk write paths invalidate what they change (capture.py decides what)."""

    def update(self, **kwargs):
        return capture.update(self, kwargs, lambda rows: super().update(**kwargs))

    update.alters_data = True  # type: ignore[attr-defined]  # Django's marker attribute on a function

    def bulk_create(self, objs, *args, **kwargs):
        objs = super().bulk_create(objs, *args, **kwargs)
        capture.bulk_created(self, objs, bool(kwargs.get("update_conflicts")))
        return objs

    bulk_create.alters_data = True  # type: ignore[attr-defined]  # Django's marker attribute on a function

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        return capture.bulk_update(
            self, objs, fields, lambda: super(CachedQuerySet, self).bulk_update(objs, fields, *args, **kwargs)
        )

    bulk_update.alters_data = True  # type: ignore[attr-defined]  # Django's marker attribute on a function


CachedManager = models.Manager.from_queryset(CachedQuerySet)


class CachedAccess:
    """``Model.cached``: read model instances through the cache by key."""

    def __init__(self, model, container: str | None = None):
        self.model = model
        self.target = container or model  # None: the model's own container
        self._built: tuple = (None, None, None)  # (definition, database, builder) of the last read

    def container(self, name: str) -> CachedAccess:
        """Read through another container that maps this model, e.g. one keyed
        by a unique column: ``User.cached.container("users_by_email").get(email)``."""
        return CachedAccess(self.model, name)

    def get(self, key):
        """Return the instance with this key; raise ``Model.DoesNotExist`` when absent."""
        build, rows = self._read([key])
        for row in rows.values():
            return build(row)
        raise self.model.DoesNotExist(f"{self.model._meta.object_name} with key {key!r} does not exist")

    def get_many(self, keys) -> dict:
        """Return ``{key: instance}`` for the keys that exist: one cache round
        trip, and one SQL query for all the misses."""
        build, rows = self._read(list(keys))
        return {key: build(row) for key, row in rows.items()}

    def _read(self, keys: list) -> tuple:
        """Return the builder of this read's instances and ``{key: row}``."""
        definition, using, rows = read_rows(self.target, "get", keys)
        built = self._built
        if built[0] is not definition or built[1] != using:  # a reload, another database: checked again
            if definition.model._meta.concrete_model is not self.model._meta.concrete_model:
                raise MappingError(
                    f"container {definition.name!r} maps {definition.model._meta.label}, not {self.model._meta.label}"
                )
            built = self._built = (definition, using, builder(self.model, using, definition.stored))
        return built[2], rows

    def filter(self, **lookups) -> list:
        """Return the instances whose columns equal ``lookups`` (instances or ids
        for foreign keys), ordered by primary key, through the index container
        keyed by exactly those columns: ``Comment.cached.filter(post=post)``."""
        return cached_filter(self.model, **lookups)

    # thread_sensitive=True runs the read in the thread that owns the request's
    # database connection, as Django's own async ORM methods do.
    async def aget(self, key):
        """Async ``get``: same result, errors and round trips, for async views."""
        return await sync_to_async(self.get, thread_sensitive=True)(key)

    async def aget_many(self, keys) -> dict:
        """Async ``get_many``: same result, errors and round trips, for async views."""
        return await sync_to_async(self.get_many, thread_sensitive=True)(keys)

    async def afilter(self, **lookups) -> list:
        """Async ``filter``: same result, errors and round trips, for async views."""
        return await sync_to_async(self.filter, thread_sensitive=True)(**lookups)


class _CachedDescriptor:
    def __get__(self, instance, owner):
        if instance is not None:
            raise AttributeError("use Model.cached, not instance.cached")
        access = owner.__dict__.get("_cachelayer_access")
        if access is None:
            access = CachedAccess(owner)
            owner._cachelayer_access = access
        return access


class CachedModelMixin(models.Model):
    """Give a model ``Model.cached.get(key)`` and invalidation on every write path.

    ``cache_key_fields`` / ``cache_value_fields`` shape the container created
    for the model after migrate (default: the primary key, the whole row).
    """

    cache_key_fields: str | None = None
    cache_value_fields: tuple[str, ...] = ()
    cache_indexes: tuple = ()  # field names, or tuples of them: an index container each (lists.py)

    objects = CachedManager()
    cached = _CachedDescriptor()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        """Save; an update of a row with containers not keyed by the primary key
        runs in a transaction even outside ``atomic``.

        pre_save reads the key the row has (receivers.py); inside a transaction
        that read locks the row until the write commits. In autocommit another
        writer could change the key between the two, and this save would leave
        that key's cached copy behind (tests/layer/test_races.py).
        """
        with capture.saving(self):  # what post_save did not deliver, once the write is done
            if (
                self.pk is None
                or kwargs.get("force_insert")
                or not snapshots.mapped_key_attnames(type(self))[1]
                or (not kwargs.get("force_update") and capture.inserts(type(self), self, kwargs.get("update_fields")))
            ):
                return super().save(*args, **kwargs)  # an insert, or no key the database must vouch for
            using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
            own = not transaction.get_connection(using).in_atomic_block
            with transaction.atomic(using=using, savepoint=False) if own else nullcontext():
                return super().save(*args, **kwargs)

    save.alters_data = True  # type: ignore[attr-defined]  # Django's marker attribute on a function

    def cached_related(self, name: str) -> list:
        """Return the objects of a reverse foreign key or m2m relation through
        the cache: ``post.cached_related("comments")``, ``group.cached_related("members")``."""
        return cached_related(self, name)

    async def acached_related(self, name: str) -> list:
        """Async ``cached_related``: same result, errors and round trips, for async views."""
        return await sync_to_async(self.cached_related, thread_sensitive=True)(name)

    def invalidate(self, using: str | None = None) -> None:
        """Outdate this row's cached copies (after raw SQL, say): under the
        keys this instance holds and those the database holds now."""
        capture.invalidate(self, using or self._state.db or router.db_for_write(type(self), instance=self))
