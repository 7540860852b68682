"""Model instances from cached rows, built the way Django unpickles them.

``Model.from_db`` runs ``Model.__init__``: two signals and a ``setattr`` per
field, a tenth of a cache hit. When nothing can observe construction (no
``pre_init``/``post_init`` receiver anywhere, no ``__init__`` or ``from_db``
of the model's own, no field attribute with a setter of its own) the
instance's ``__dict__`` is filled directly, as ``Model.__reduce__``'s
unpickling does. Otherwise ``from_db`` runs as usual. The receivers are
looked at on every build, so a builder may be kept (mixins.py keeps one per
definition) and still sees a receiver connected after it was made.
"""

from __future__ import annotations

from functools import cache

from django.db import models
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.signals import post_init, pre_init


def builder(model, using: str, names: list[str]):
    """Return ``row -> instance`` for rows of ``names`` (attnames) read for ``using``."""
    if not _plain(model):
        return lambda row: model.from_db(using, names, row)
    new, state_class, from_db = model.__new__, models.base.ModelState, model.from_db

    def build(row):
        if pre_init.receivers or post_init.receivers:
            return from_db(using, names, row)
        instance = new(model)
        state = state_class()
        state.adding, state.db = False, using
        values = instance.__dict__
        values.update(zip(names, row))
        values["_state"] = state
        return instance

    return build


@cache
def _plain(model) -> bool:
    """True when constructing ``model`` does nothing but store the field values."""
    if model.__init__ is not models.Model.__init__ or model.from_db.__func__ is not models.Model.from_db.__func__:  # type: ignore[attr-defined]  # a bound classmethod has __func__
        return False
    for field in model._meta.concrete_fields:
        attribute = model.__dict__.get(field.attname) or getattr(model, field.attname, None)
        if hasattr(type(attribute), "__set__") and not isinstance(attribute, ForeignKeyDeferredAttribute):
            return False
    return True
