"""A container for every CachedModelMixin model, created and kept in step after migrate.

The mapping a model declares (``cache_key_fields``, ``cache_value_fields``)
is applied to its container on every migrate, until the container is edited
in the admin (``Container.declared`` turns False): from then on the admin's
mapping wins and a system check reports the difference.

Each entry of ``cache_indexes`` gets an index container the same way
(``app_model__by_post``; an m2m field name indexes its through model by the
source column: ``app_model_field__by_model``). A declared index container
that the model no longer declares is deleted.
"""

from __future__ import annotations

from django.apps import apps
from django.db import models, router

from cachelayer.core import conf
from cachelayer.core.mapping import split_columns
from cachelayer.engine.invalidation import invalidate_container, record_configuration
from cachelayer.engine.registry import container_name, registry
from cachelayer.lists import through_sides
from cachelayer.mixins import CachedModelMixin
from cachelayer.models import Container
from cachelayer.tasks import migrating


def cached_models() -> list:
    return [m for m in apps.get_models() if issubclass(m, CachedModelMixin) and not m._meta.proxy]


def declared_mapping(model) -> dict[str, str]:
    """Return the key and value columns ``model`` declares for its container."""
    pk = model._meta.pk
    primary = "|".join(f.name for f in pk.fields) if isinstance(pk, models.CompositePrimaryKey) else pk.name
    return {
        "key_columns": model.cache_key_fields or primary,
        "value_columns": "|".join(model.cache_value_fields or ()),
    }


def declared_indexes(model) -> dict[str, tuple]:
    """Return ``{container name: (model, key columns)}`` for the indexes ``model`` declares."""
    found = {}
    for entry in getattr(model, "cache_indexes", ()):
        names = (entry,) if isinstance(entry, str) else tuple(entry)
        field = model._meta.get_field(names[0])
        if len(names) == 1 and field.many_to_many:  # m2m (either side): its through rows by their source
            through, source, _ = through_sides(field)
            found[f"{container_name(through)}__by_{source}"] = (through, source)
        else:
            found[f"{container_name(model)}__by_{'_'.join(names)}"] = (model, "|".join(names))
    return found


def declared_containers() -> dict[str, tuple]:
    """Return ``{name: (model, mapping)}`` for every container the mixin models declare."""
    found = {}
    for model in cached_models():
        found[container_name(model)] = (model, declared_mapping(model))
        for name, (indexed, key_columns) in declared_indexes(model).items():
            found[name] = (indexed, {"key_columns": key_columns, "value_columns": ""})
    return found


def mapping_drift(container, mapping: dict) -> dict[str, str]:
    """Return the columns of ``mapping`` that ``container`` maps otherwise."""
    return {
        name: wanted
        for name, wanted in mapping.items()
        if split_columns(getattr(container, name)) != split_columns(wanted)
    }


def content_types(models, using: str) -> dict:
    """Return ``{model: ContentType}``, creating each app's missing content types
    in one statement (right after a flush, none exist yet)."""
    from django.contrib.contenttypes.management import create_contenttypes
    from django.contrib.contenttypes.models import ContentType

    for app_config in {apps.get_app_config(model._meta.app_label) for model in models}:
        create_contenttypes(app_config, verbosity=0, using=using)
    return ContentType.objects.db_manager(using).get_for_models(*models)


def create_missing(using: str = "default", **kwargs) -> list[str]:
    """Create the containers that are missing, apply changed declarations and
    delete declared indexes no model declares any more; return their names.

    Containers edited in the admin are left as they are. Missing containers
    are created in one statement and announced in one configuration bump:
    migrate, and every test database flush, runs this.
    """
    if not conf.get("AUTO_CONTAINERS") or not router.allow_migrate_model(using, Container):
        return []  # off, or the container table does not live in that database
    declared = declared_containers()
    containers = Container.objects.using(using)
    existing = containers.in_bulk(list(declared), field_name="name")
    missing = [name for name in declared if name not in existing]
    drifted = [c for name, c in existing.items() if c.declared and mapping_drift(c, declared[name][1])]
    types = content_types({declared[name][0] for name in missing}, using)
    containers.bulk_create(
        [
            Container(name=name, content_type=types[declared[name][0]], declared=True, **declared[name][1])
            for name in missing
        ]
    )
    for container in drifted:
        for field, value in mapping_drift(container, declared[container.name][1]).items():
            setattr(container, field, value)
    containers.bulk_update(drifted, ["key_columns", "value_columns"])
    touched = [*missing, *(container.name for container in drifted)]
    if touched:  # every process reloads; the schema fingerprint of a changed mapping moves
        record_configuration(using, touched)  # after commit, with the transaction's invalidations
    for container in containers.filter(declared=True, name__contains="__by_").exclude(name__in=declared):
        container.delete()  # an index the model declared once
        touched.append(container.name)
    return touched


def post_migrate_receiver(sender, using="default", plan=None, **kwargs):
    """After migrate: containers for new mixin models, and the generation of
    every container whose table the plan's operations touched bumped
    (migrating.py): neither DDL nor a data migration sends a signal that
    names the rows."""
    if sender.name != "cachelayer":
        return
    state_apps = kwargs.get("apps", apps)
    try:  # the state migrate reached, as Django's create_contenttypes asks it (no query)
        state_apps.get_model("cachelayer", "Container")
    except LookupError:
        return  # another app migrated alone (post_migrate goes to every app): cachelayer's tables come later
    create_missing(using)
    tables = migrating.touched_tables(plan, state_apps)
    if tables is migrating.ANY_TABLE or tables:  # an empty set: nothing touched
        registry.load()
        for definition in migrating.outdated(registry.definitions(), tables):
            invalidate_container(None, definition)
