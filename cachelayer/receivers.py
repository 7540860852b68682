"""Signal receivers that invalidate on save, delete and cascades.

Connected in AppConfig.ready() for every model: a container can map any
model, chosen in the admin at run time. (A side effect: QuerySet.delete()
cannot use Django's fast-delete path, since post_delete has a listener.)
"""

from __future__ import annotations

from functools import partial

from django.db import transaction

from cachelayer import conf, outbox
from cachelayer.adapters import get_adapter
from cachelayer.containers import registry
from cachelayer.invalidation import invalidate_many
from cachelayer.keys import KeySpace, config_key

OLD_KEYS = "_cachelayer_old_keys"


def _keyed_by_pk(definition) -> bool:
    return len(definition.key_fields) == 1 and definition.key_fields[0].primary_key


def remember_old_keys(sender, instance, raw=False, using=None, **kwargs):
    """pre_save: note the keys a row had, when its key columns may change."""
    if raw or instance._state.adding or instance.pk is None:
        return
    definitions = [d for d in registry.for_model(sender) if not _keyed_by_pk(d)]
    if not definitions:
        return
    loaded = getattr(instance, "_cachelayer_loaded", None)
    if loaded is not None:
        loaded = dict(zip(*loaded))
    else:  # not a CachedModelMixin instance: ask the database
        attnames = list({f.attname for d in definitions for f in d.key_fields})
        values = sender._base_manager.using(using).filter(pk=instance.pk).values(*attnames).first()
        loaded = values or {}
    old = {}
    for definition in definitions:
        if all(f.attname in loaded for f in definition.key_fields):
            old[definition.name] = definition.key_from(loaded)
    setattr(instance, OLD_KEYS, old)


def invalidate_instance(sender, instance, using=None, raw=False, **kwargs):
    """post_save / post_delete: outdate the row's key (and its old key)."""
    if raw:
        return
    old = instance.__dict__.pop(OLD_KEYS, {})
    changes = {}
    for definition in registry.for_model(sender):
        keys = changes[definition] = {definition.key_of_instance(instance)}
        if definition.name in old:
            keys.add(old[definition.name])
    invalidate_many(using, changes)
    loaded = getattr(instance, "_cachelayer_loaded", None)
    if loaded is not None:  # the saved values are now the loaded ones
        names, values = loaded
        current = instance.__dict__
        instance._cachelayer_loaded = (names, [current.get(name, value) for name, value in zip(names, values)])


def configuration_changed(sender, instance, using=None, **kwargs):
    """Container / CachePolicy / ConfigOption saved or deleted: after commit,
    bump the configuration version on every cache so every process reloads."""
    transaction.on_commit(partial(_announce, instance, using), using=using, robust=True)


def _announce(instance, using: str | None = None) -> None:
    from cachelayer.models import Container

    aliases = {conf.get("CACHE_ALIAS")}
    aliases.update(a or conf.get("CACHE_ALIAS") for a in Container.objects.values_list("cache_alias", flat=True))
    registry.loaded = False  # this process reloads on its next lookup
    prefix = conf.get("KEY_PREFIX")
    shared = [config_key(prefix)]
    if isinstance(instance, Container):  # payloads left in a cache it moved away from die
        shared.append(KeySpace(prefix, instance.name).gen)
    for alias in aliases:
        adapter = get_adapter(alias)
        for key in shared:
            failed = adapter.incr_everywhere(key)
            if failed:
                outbox.record(using, adapter, "", shared=[key], servers=failed)
