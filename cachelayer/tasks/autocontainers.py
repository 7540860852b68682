"""A container for every CachedModelMixin model, created and kept in step after migrate.

The mapping a model declares (``cache_key_fields``, ``cache_value_fields``)
is applied to its container on every migrate, until the container is edited
in the admin (``Container.declared`` turns False): from then on the admin's
mapping wins and a system check reports the difference.
"""

from __future__ import annotations

from django.apps import apps
from django.db import router

from cachelayer.core import conf
from cachelayer.core.mapping import split_columns
from cachelayer.engine.invalidation import invalidate_container
from cachelayer.engine.registry import container_name, registry
from cachelayer.mixins import CachedModelMixin
from cachelayer.models import Container


def cached_models() -> list:
    return [
        m for m in apps.get_models() if issubclass(m, CachedModelMixin) and not m._meta.proxy
    ]


def declared_mapping(model) -> dict[str, str]:
    """Return the key and value columns ``model`` declares for its container."""
    return {
        "key_columns": model.cache_key_fields or model._meta.pk.name,
        "value_columns": "|".join(model.cache_value_fields or ()),
    }


def drift(model, container) -> dict[str, str]:
    """Return the declared columns that ``container`` does not map as declared."""
    return {
        name: wanted
        for name, wanted in declared_mapping(model).items()
        if split_columns(getattr(container, name)) != split_columns(wanted)
    }


def create_missing(using: str = "default", **kwargs) -> list[str]:
    """Create the containers that are missing and apply changed declarations; return their names.

    Containers edited in the admin are left as they are.
    """
    from django.contrib.contenttypes.models import ContentType

    if not conf.get("AUTO_CONTAINERS") or not router.allow_migrate_model(using, Container):
        return []  # off, or the container table does not live in that database
    touched = []
    for model in cached_models():
        name = container_name(model)
        container = Container.objects.using(using).filter(name=name).first()
        if container is None:
            Container.objects.using(using).create(
                name=name,
                content_type=ContentType.objects.db_manager(using).get_for_model(model),
                declared=True,
                **declared_mapping(model),
            )
        elif container.declared and drift(model, container):
            for field, value in drift(model, container).items():
                setattr(container, field, value)
            container.save(using=using)  # every process reloads; the schema fingerprint moves
        else:
            continue
        touched.append(name)
    return touched


def data_changed(plan) -> bool:
    """Return True when a migration plan runs code or SQL that may write rows (RunPython, RunSQL)."""
    from django.db.migrations import RunPython, RunSQL

    return any(isinstance(op, (RunPython, RunSQL)) for migration, _ in plan or () for op in migration.operations)


def post_migrate_receiver(sender, using="default", plan=None, **kwargs):
    """After migrate: containers for new mixin models, and every generation
    bumped when a data migration ran (its historical managers and raw SQL
    send no signal that names the rows)."""
    if sender.name != "cachelayer":
        return
    create_missing(using)
    if data_changed(plan):
        registry.load()
        for definition in registry.by_name.values():
            invalidate_container(None, definition)
