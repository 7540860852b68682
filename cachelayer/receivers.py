"""Signal receivers that invalidate on save, delete, cascades and m2m changes.

Connected in AppConfig.ready() for every model: a container can map any
model, chosen in the admin at run time. (A side effect: QuerySet.delete()
cannot use Django's fast-delete path, since post_delete has a listener.)
Receivers record row snapshots (snapshots.py); keys are worked out when the
invalidation is delivered, after commit (invalidation.py). They never read a
deferred attribute: after a delete that would query a row that is gone.
"""

from __future__ import annotations

from django.db import connections, models, transaction

from cachelayer import adapters
from cachelayer.engine import snapshots
from cachelayer.engine.invalidation import bump_configuration, record_model, record_rows
from cachelayer.engine.registry import registry
from cachelayer.models import Container

BEFORE = "_cachelayer_before"  # the row as the database had it, read by pre_save
# on_delete handlers that change no row of the related model (it is deleted, or nothing happens)
KEEPS_NO_CHILD = (models.CASCADE, models.PROTECT, models.RESTRICT, models.DO_NOTHING)


def _own(model) -> bool:
    """cachelayer's own tables (containers, outbox) are configuration, not cached data."""
    return model._meta.app_label == "cachelayer"


def before_save(sender, instance, raw=False, using=None, **kwargs):
    """pre_save: read the key columns the row has now, when the instance cannot vouch for them."""
    if _own(sender):
        return
    _, from_db = snapshots.mapped_key_attnames(sender)
    if not from_db or instance.pk is None:
        return
    if raw:  # fixture loading: no queries; containers not keyed by pk get their generation bumped
        instance.__dict__[BEFORE] = {sender._meta.pk.attname: instance.pk}
        return
    instance.__dict__[BEFORE] = snapshots.read(sender, using, [instance.pk], from_db).get(instance.pk)


def after_save(sender, instance, using=None, update_fields=None, **kwargs):
    """post_save: outdate the row's old and new keys in every container."""
    if _own(sender):
        return
    before = instance.__dict__.pop(BEFORE, None)
    assigned = snapshots.loaded(instance)
    if update_fields is not None:
        names = {sender._meta.get_field(name).attname for name in update_fields} | {sender._meta.pk.attname}
        assigned = {attname: value for attname, value in assigned.items() if attname in names}
    written = snapshots.written(sender, using, instance.pk, assigned)
    record_rows(using, sender, [before, {**(before or {}), **written}])


def before_delete(sender, instance, using=None, **kwargs):
    """pre_delete (inside the delete's transaction): outdate the row, and the
    children that SET_NULL / SET_DEFAULT / SET() will change without a signal."""
    if _own(sender):
        return
    every, from_db = snapshots.mapped_key_attnames(sender)
    row = snapshots.loaded(instance)
    wanted = from_db | (every - row.keys())
    if wanted:
        row.update(snapshots.read(sender, using, [instance.pk], wanted).get(instance.pk) or {})
    record_rows(using, sender, [row])
    for relation in _reverse_foreign_keys(sender):
        # m2m through rows are cascaded with no signal at all; SET_* children are updated with none
        if relation.related_model._meta.auto_created or relation.on_delete not in KEEPS_NO_CHILD:
            _children_changed(relation, instance, using)


def _reverse_foreign_keys(model) -> list:
    """Return the foreign keys (and one-to-ones) of other models that point to ``model``, hidden ones too."""
    return [
        relation
        for relation in model._meta.get_fields(include_hidden=True)
        if relation.auto_created and not relation.concrete and (relation.one_to_many or relation.one_to_one)
    ]


def _children_changed(relation, parent, using: str) -> None:
    """Outdate the rows that point to ``parent`` through ``relation`` before the
    collector updates or deletes them without a signal of their own."""
    child, field = relation.related_model, relation.field
    every, _ = snapshots.mapped_key_attnames(child)
    if not every:
        record_model(using, child)  # not mapped here: mapped since? delivery finds out
        return
    rows = child._base_manager.using(using).filter(**{field.attname: getattr(parent, field.target_field.attname)})
    if connections[using].in_atomic_block:
        rows = rows.select_for_update()
    old = list(rows.values(child._meta.pk.attname, *every))
    if relation.on_delete is models.SET_NULL:  # the new value is known: an index leaves the row out of every list
        new = [{**row, field.attname: None} for row in old]
    else:  # unknown here: a container keyed by the column gets its generation bumped
        new = [{attname: value for attname, value in row.items() if attname != field.attname} for row in old]
    record_rows(using, child, old + new)


def m2m_changed(sender, instance, action, model, pk_set, using=None, **kwargs):
    """m2m_changed: outdate the through rows that add() creates and remove()/clear() delete.

    Django writes them with bulk_create and a queryset delete, and sends no
    row signal for an auto-created through model. Rows are read after an add
    and before a removal, inside the relation manager's transaction.
    """
    if action not in ("post_add", "pre_remove", "pre_clear") or _own(sender):
        return
    every, _ = snapshots.mapped_key_attnames(sender)
    if not every:
        record_model(using, sender)
        return
    condition = models.Q(pk__in=[])
    for source in _links(sender, type(instance)):
        for target in _links(sender, model):
            if source is not target:
                match = models.Q(**{source.attname: getattr(instance, source.target_field.attname)})
                if pk_set is not None:
                    match &= models.Q(**{f"{target.attname}__in": list(pk_set)})
                condition |= match
    rows = sender._base_manager.using(using).filter(condition).values(sender._meta.pk.attname, *every)
    record_rows(using, sender, list(rows))


def _links(through, model) -> list:
    """Return the foreign keys of ``through`` that point to ``model``."""
    label = model._meta.concrete_model._meta.label_lower
    return [
        f
        for f in through._meta.concrete_fields
        if f.is_relation and f.remote_field.model._meta.concrete_model._meta.label_lower == label
    ]


def settings_changed(*, setting, **kwargs):
    """setting_changed (tests, override_settings): drop what was built from CACHES / CACHELAYER / SECRET_KEY."""
    if setting in ("CACHELAYER", "CACHES"):
        adapters.reset()
    if setting in ("CACHELAYER", "CACHES", "SECRET_KEY", "SECRET_KEY_FALLBACKS"):
        registry.clear()  # definitions hold the payload signer, keyed from these


def configuration_changed(sender, instance, using=None, **kwargs):
    """Container / CachePolicy / ConfigOption saved or deleted: after commit,
    bump the configuration version on every cache so every process reloads."""
    names = [instance.name] if isinstance(instance, Container) else []
    # A function, not a partial: Django logs a robust callback's __qualname__.
    transaction.on_commit(lambda: bump_configuration(using, names), using=using, robust=True)
