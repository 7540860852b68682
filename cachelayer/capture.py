"""Write capture: what a write must outdate, for every path in one place.

The model signals (receivers.py) and the queryset's bulk paths (mixins.py)
both come here. A write records row snapshots (engine/snapshots.py), old and
new; keys are worked out when the invalidation is delivered, after commit
(engine/invalidation.py). Nothing here reads a deferred attribute: after a
delete that would query a row that is gone.

No other code can skip a save's invalidation (docs/consistency.md, "Consistency rules"):

1. ``pre_save`` captures the save before the write: the key columns the row
   has in the database, and the instance. Inside ``atomic`` the capture goes
   into the transaction at once, whose first, robust ``on_commit`` callback
   delivers it at commit even when ``post_save`` never reaches cachelayer
   (another receiver raised, and the project caught it).
2. Outside ``atomic`` Django commits the write before ``post_save``. A mixin
   model's ``save()`` delivers what ``post_save`` did not, once the write is
   done (``saving``). Any other model's capture outdates the keys it knows
   before the write, and stays in flight until its ``post_save``, the end
   of the request, or the thread's next save delivers it again after the
   write.
3. ``post_save`` records the exact old and new rows, and marks the capture done.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from django.db import connections, models, transaction

from cachelayer.core import conf
from cachelayer.engine import snapshots
from cachelayer.engine.invalidation import (
    invalidate_many,
    known_keys,
    record_capture,
    record_model,
    record_rows,
)

CAPTURE = "_cachelayer_capture"  # instance.__dict__: the save in flight
GUARDED = "_cachelayer_guarded"  # instance.__dict__: a mixin model's save() delivers after the write
# on_delete handlers that change no row of the related model (it is deleted, or nothing happens)
KEEPS_NO_CHILD = (models.CASCADE, models.PROTECT, models.RESTRICT, models.DO_NOTHING)


class Capture:
    """One save, captured before its write: the row as the database had it, and the instance."""

    __slots__ = ("before", "done", "instance", "joined", "model", "unread", "using")

    def __init__(self, model, using: str, instance, before: dict | None, unread: bool = False):
        self.model, self.using, self.instance, self.before = model, using, instance, before
        self.done = False  # post_save recorded the exact rows
        self.joined = False  # inside atomic: the transaction delivers it at commit
        # The old key was not read, Django inserting (``inserts``): ``before`` is the pk alone (the
        # containers keyed by anything else are bumped by generation) until post_save says it inserted.
        self.unread = unread

    def rows(self) -> list[dict]:
        """Return the old row and the instance as it stands: what to outdate when
        ``post_save`` did not say. A value the database computes (an expression)
        is left out, so a container keyed by it gets its generation bumped."""
        now = {a: v for a, v in snapshots.loaded(self.instance).items() if not hasattr(v, "resolve_expression")}
        if self.instance.pk is None:
            now.pop(self.model._meta.pk.attname, None)
        return [row for row in (self.before, now) if row]


class _InFlight(threading.local):
    def __init__(self):
        self.captures: list[Capture] = []  # autocommit saves whose post_save has not run


_in_flight = _InFlight()


def inserts(model, instance, update_fields) -> bool:
    """Return True when Django's save() inserts without trying an UPDATE: an instance being
    added whose every pk field has a default (``Model._save_table``), so no row has its key
    yet. Only ``force_update``, which pre_save does not see, still updates: post_save's
    ``created`` tells (after_save)."""
    return (
        instance._state.adding
        and update_fields is None
        and all(field.has_default() or field.has_db_default() for field in model._meta.pk_fields)
    )


def before_save(model, instance, raw: bool, using: str, update_fields=None) -> None:
    """pre_save: capture the save (read the key columns the row has now, when the
    instance cannot vouch for them) where no later receiver can lose it."""
    before, unread = None, False
    _, from_db = snapshots.mapped_key_attnames(model)
    if from_db and instance.pk is not None:
        unread = not raw and inserts(model, instance, update_fields)  # no old key: Django's one query stays one
        if raw or unread:  # fixture loading, an insert: no queries; containers not keyed by pk get
            before = {model._meta.pk.attname: instance.pk}  # their generation bumped (an insert: if it updated)
        else:
            before = snapshots.read(model, using, [instance.pk], from_db).get(instance.pk)
    capture = instance.__dict__[CAPTURE] = Capture(model, using, instance, before, unread)
    if connections[using].in_atomic_block:
        capture.joined = True
        record_capture(using, capture)
        return
    flush()  # earlier saves of this thread whose post_save never ran: committed since
    _in_flight.captures.append(capture)
    if not instance.__dict__.get(GUARDED):
        invalidate_many(None, known_keys(model, capture.rows()), refill=False)  # before the write: see the docstring


def after_save(model, instance, using: str, update_fields, created: bool = False) -> None:
    """post_save: outdate the row's old and new keys in every container."""
    capture = instance.__dict__.pop(CAPTURE, None)
    before = capture.before if capture is not None else None
    if capture is not None and capture.unread and created:  # it inserted: there was no old row
        before = None
    assigned = snapshots.loaded(instance)
    if update_fields is not None:
        names = {model._meta.get_field(name).attname for name in update_fields} | {model._meta.pk.attname}
        assigned = {attname: value for attname, value in assigned.items() if attname in names}
    written = snapshots.written(model, using, instance.pk, assigned)
    record_rows(using, model, [before, {**(before or {}), **written}])
    if capture is not None:
        capture.done = True
        if capture in _in_flight.captures:
            _in_flight.captures.remove(capture)


@contextmanager
def saving(instance):
    """Run a mixin model's save: what its ``post_save`` did not deliver is
    delivered once the write is done, whatever raised in between."""
    instance.__dict__[GUARDED] = True
    try:
        yield
    finally:
        del instance.__dict__[GUARDED]
        capture = instance.__dict__.pop(CAPTURE, None)  # still there: post_save did not run
        if capture is not None and not capture.done and not capture.joined:
            if capture in _in_flight.captures:
                _in_flight.captures.remove(capture)
            _outdate_now(capture)


def flush() -> None:
    """Deliver the autocommit saves of this thread whose ``post_save`` never ran
    (request_finished, the thread's next save): their writes committed since."""
    while _in_flight.captures:
        _outdate_now(_in_flight.captures.pop())


def _outdate_now(capture: Capture) -> None:
    if not capture.done:
        record_rows(None, capture.model, capture.rows())  # None: now, outside any later transaction


def before_delete(model, instance, using: str) -> None:
    """pre_delete (inside the delete's transaction): outdate the row, and the
    children that SET_NULL / SET_DEFAULT / SET() will change without a signal."""
    every, from_db = snapshots.mapped_key_attnames(model)
    row = snapshots.loaded(instance)
    wanted = from_db | (every - row.keys())
    if wanted:
        row.update(snapshots.read(model, using, [instance.pk], wanted).get(instance.pk) or {})
    record_rows(using, model, [row])
    for relation in changes_children(model):
        _children_changed(relation, instance, using)


def changes_children(model) -> list:
    """Return the relations whose rows a delete of ``model`` changes with no signal of
    their own: m2m through rows (cascaded) and SET_NULL / SET_DEFAULT / SET() children."""
    return [
        relation
        for relation in model._meta.get_fields(include_hidden=True)
        if relation.auto_created
        and not relation.concrete
        and (relation.one_to_many or relation.one_to_one)
        and (relation.related_model._meta.auto_created or relation.on_delete not in KEEPS_NO_CHILD)
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


def m2m_changed(through, instance, action: str, model, pk_set, using: str) -> None:
    """m2m_changed: outdate the through rows that add() creates and remove()/clear() delete.

    Django writes them with bulk_create and a queryset delete, and sends no
    row signal for an auto-created through model. Rows are read after an add
    and before a removal, inside the relation manager's transaction.
    """
    if action not in ("post_add", "pre_remove", "pre_clear"):
        return
    every, _ = snapshots.mapped_key_attnames(through)
    if not every:
        record_model(using, through)
        return
    condition = models.Q(pk__in=[])
    for source in _links(through, type(instance)):
        for target in _links(through, model):
            if source is not target:
                match = models.Q(**{source.attname: getattr(instance, source.target_field.attname)})
                if pk_set is not None:
                    match &= models.Q(**{f"{target.attname}__in": list(pk_set)})
                condition |= match
    rows = through._base_manager.using(using).filter(condition).values(through._meta.pk.attname, *every)
    record_rows(using, through, list(rows))


def _links(through, model) -> list:
    """Return the foreign keys of ``through`` that point to ``model``."""
    label = model._meta.concrete_model._meta.label_lower
    return [
        f
        for f in through._meta.concrete_fields
        if f.is_relation and f.remote_field.model._meta.concrete_model._meta.label_lower == label
    ]


# The queryset paths that send no signal (mixins.CachedQuerySet) ---------------------


def update(queryset, values: dict, run) -> int:
    """Run ``run(queryset)`` (Django's update of ``values``) and outdate the rows it changed.

    The rows are locked and read first, so that what they were and what they
    become are both known; past UPDATE_KEYS_LIMIT rows, or when no container
    has keys to read, the model's containers get their generation bumped.
    """
    model = queryset.model
    every, _ = snapshots.mapped_key_attnames(model)
    limit = conf.get("UPDATE_KEYS_LIMIT")
    pk_name = model._meta.pk.attname
    with transaction.atomic(using=queryset.db, savepoint=False):
        before = (
            list(queryset.select_for_update().order_by().values(pk_name, *(every - {pk_name}))[: limit + 1])
            if every
            else []
        )
        if not every or len(before) > limit:
            count = run(queryset)
            record_model(queryset.db, model)
            return count
        pks = [row[pk_name] for row in before]
        count = run(queryset.filter(pk__in=pks))
        after = snapshots.read(model, queryset.db, pks, every) if _attnames(model, values) & every else {}
        record_rows(queryset.db, model, before + list(after.values()))
        return count


def bulk_created(queryset, objs, update_conflicts: bool) -> None:
    """Outdate the rows ``bulk_create`` wrote (objects without a pk: the generation)."""
    if update_conflicts:  # rows matched by other unique fields changed: unknown
        record_model(queryset.db, queryset.model)
    else:
        record_rows(queryset.db, queryset.model, [snapshots.loaded(obj) for obj in objs])


def bulk_update(queryset, objs: list, fields, run) -> int:
    """Run ``run()`` (Django's bulk_update of ``fields``) and outdate the old
    (read first, locked) and new keys of ``objs``."""
    model = queryset.model
    _, from_db = snapshots.mapped_key_attnames(model)
    written = _attnames(model, fields) | {model._meta.pk.attname}
    with transaction.atomic(using=queryset.db, savepoint=False):
        before = snapshots.read(model, queryset.db, [obj.pk for obj in objs], from_db) if from_db else {}
        count = run()
        new = [
            {**before.get(obj.pk, {}), **{a: v for a, v in snapshots.loaded(obj).items() if a in written}}
            for obj in objs
        ]
        record_rows(queryset.db, model, list(before.values()) + new)
    return count


def invalidate(instance, using: str) -> None:
    """Outdate a row's cached copies under the keys ``instance`` holds and those the database holds now."""
    model = type(instance)
    every, _ = snapshots.mapped_key_attnames(model)
    now = snapshots.read(model, using, [instance.pk], every).get(instance.pk)
    record_rows(using, model, [snapshots.loaded(instance), now])


def _attnames(model, names) -> set[str]:
    """Return the attnames of fields given by name or attname."""
    return {model._meta.get_field(name).attname for name in names}
