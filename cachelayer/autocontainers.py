"""A container for every CachedModelMixin model, created after migrate."""

from __future__ import annotations

from django.apps import apps
from django.db import router

from cachelayer import conf


def container_name(model) -> str:
    """Return the auto-created container's name: ``app_model`` (no '.')."""
    return model._meta.label_lower.replace(".", "_")


def cached_models() -> list:
    from cachelayer.mixins import CachedModelMixin

    return [
        m for m in apps.get_models() if issubclass(m, CachedModelMixin) and not m._meta.proxy
    ]


def create_missing(using: str = "default", **kwargs) -> list[str]:
    """Create the containers that are missing; return their names. Edits are kept."""
    from django.contrib.contenttypes.models import ContentType

    from cachelayer.models import Container

    if not conf.get("AUTO_CONTAINERS") or not router.allow_migrate_model(using, Container):
        return []  # off, or the container table does not live in that database
    created = []
    for model in cached_models():
        name = container_name(model)
        if Container.objects.using(using).filter(name=name).exists():
            continue
        Container.objects.using(using).create(
            name=name,
            content_type=ContentType.objects.db_manager(using).get_for_model(model),
            key_columns=model.cache_key_fields or model._meta.pk.name,
            value_columns="|".join(model.cache_value_fields or ()),
        )
        created.append(name)
    return created


def post_migrate_receiver(sender, using="default", **kwargs):
    if sender.name == "cachelayer":
        create_missing(using)
