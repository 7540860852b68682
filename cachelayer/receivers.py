"""Signal receivers: model writes, configuration edits, settings changes.

The write receivers are connected per model, only for the models some
container maps (and their family: proxies, multi-table parents and
children, other models on the same table, parents whose deletion changes
mapped children without a signal), so every other model keeps Django's fast
paths: a ``QuerySet.delete()`` that loads no rows, an m2m ``add()`` with no
SELECT. They follow the registry (``definitions_changed``): connected and
disconnected as containers come and go. While the registry is not loaded,
one receiver per signal listens to every model, loads it, and passes the
signal on. What a write outdates is decided in capture.py.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from django.apps import apps
from django.db.models import signals

from cachelayer import capture
from cachelayer.adapters.registry import reset as reset_adapters
from cachelayer.core import conf
from cachelayer.engine.invalidation import deliver_generation, record_configuration
from cachelayer.engine.registry import registry
from cachelayer.models import Container


def _own(model) -> bool:
    """cachelayer's own tables (containers, outbox) are configuration, not cached data."""
    return model._meta.app_label == "cachelayer"


def before_save(sender, instance, raw=False, using=None, update_fields=None, **kwargs):
    capture.before_save(sender, instance, raw, using, update_fields)


def after_save(sender, instance, created=False, using=None, update_fields=None, **kwargs):
    capture.after_save(sender, instance, using, update_fields, created)


def before_delete(sender, instance, using=None, **kwargs):
    capture.before_delete(sender, instance, using)


def m2m_changed(sender, instance, action, model, pk_set, using=None, **kwargs):
    capture.m2m_changed(sender, instance, action, model, pk_set, using)


WRITES: dict[str, tuple[signals.ModelSignal, Callable[..., None]]] = {  # name -> (signal, receiver)
    "pre_save": (signals.pre_save, before_save),
    "post_save": (signals.post_save, after_save),
    "pre_delete": (signals.pre_delete, before_delete),
    "m2m_changed": (signals.m2m_changed, m2m_changed),
}
ROWS = frozenset(WRITES)  # a mapped model's rows: every write receiver
CHILDREN = frozenset({"pre_delete"})  # a parent whose delete changes mapped children


class Wiring:
    """Which write receivers are connected for which model (dispatch_uid per model)."""

    def __init__(self):
        self.wired: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> names
        self.historical: weakref.WeakSet = weakref.WeakSet()  # models of migration states (apps.get_model)
        self.followed = False  # connected per model at least once

    def wanted(self, models, historical=()) -> dict:
        """Return ``{model: names}`` under the loaded definitions (models of migration
        states get the row receivers only: their relation graph may be half built)."""
        historical = [model for model in historical if registry.sharing_rows(model)]
        rows = {model for model in models if not _own(model) and registry.sharing_rows(model)}
        wanted = dict.fromkeys([*rows, *historical], ROWS)
        for model in set(models) - rows:
            if not _own(model) and any(r.related_model in rows for r in capture.changes_children(model)):
                wanted[model] = CHILDREN
        return wanted

    def follow(self, loaded: bool) -> None:
        """Connect and disconnect per model to match the registry; listen to every
        model while it is not loaded."""
        if not loaded:
            self.bootstrap(True)
            return
        wanted = self.wanted(apps.get_models(include_auto_created=True), list(self.historical))
        for model in [*self.wired.keys()]:
            if model not in wanted:
                self.connect(model, frozenset())
        newly = [  # (a model of a migration state is new itself: wired when made, or seen by the bootstrap)
            model
            for model, names in wanted.items()
            if names == ROWS and self.wired.get(model) != ROWS and model not in self.historical
        ]
        for model, names in wanted.items():
            self.connect(model, names)
        self.bootstrap(False)
        if self.followed:  # not this process's first load: see docs/consistency.md, "Consistency rules"
            for definition in {d for model in newly for d in registry.sharing_rows(model)}:
                deliver_generation(definition)  # this process wrote its model unseen until now
        self.followed = True

    def connect(self, model, names: frozenset) -> None:
        had = self.wired.get(model, frozenset())
        for name in had - names:
            WRITES[name][0].disconnect(sender=model, dispatch_uid=_uid(name, model))
        for name in names - had:
            signal, receiver = WRITES[name]
            if model in self.historical:  # held by the model alone: gone with it (Django keeps senders' ids)
                receiver = (model.__dict__.get(RELAYS) or _set_relays(model))[name]
            signal.connect(receiver, sender=model, dispatch_uid=_uid(name, model))
        if names:
            self.wired[model] = names
        else:
            self.wired.pop(model, None)

    def bootstrap(self, on: bool) -> None:
        for name, (signal, _) in WRITES.items():
            if on:
                signal.connect(_BOOTSTRAP[name], dispatch_uid=f"cachelayer.bootstrap.{name}")
            else:
                signal.disconnect(dispatch_uid=f"cachelayer.bootstrap.{name}")

    def model_prepared(self, sender, **kwargs) -> None:
        """class_prepared: a model of a migration state (a data migration's
        ``apps.get_model()``) is connected like the model it stands for."""
        if sender._meta.apps is apps:
            return
        self.historical.add(sender)
        if registry.loaded and registry.sharing_rows(sender):
            self.connect(sender, ROWS)


RELAYS = "_cachelayer_relays"


def _set_relays(model) -> dict:
    """Give a model of a migration state receivers of its own, which die with it."""

    def relay(receiver):
        return lambda **kwargs: receiver(**kwargs)

    relays = {name: relay(receiver) for name, (_, receiver) in WRITES.items()}
    setattr(model, RELAYS, relays)
    return relays


def _uid(name: str, model) -> str:
    return f"cachelayer.{name}.{model._meta.label_lower}"


wiring = Wiring()


def _bootstrapper(name: str):
    """Return the receiver that listens to every model until the registry is loaded."""
    receiver = WRITES[name][1]

    def bootstrap(sender, **kwargs):
        if _own(sender) or name in wiring.wired.get(sender, ()):
            return  # its own receiver is connected: it runs in this send too
        registry.for_model(sender)  # loads the registry: follow() connects per model, and disconnects this
        if not registry.loaded or name in wiring.wired.get(sender, ()):
            receiver(sender=sender, **kwargs)  # connected during this send: Django will not call it now

    bootstrap.__qualname__ = f"cachelayer bootstrap {name}"
    return bootstrap


_BOOTSTRAP = {name: _bootstrapper(name) for name in WRITES}


def definitions_changed(sender, loaded, **kwargs):
    """The registry (re)loaded or will: follow it."""
    wiring.follow(loaded)


def request_finished(sender, **kwargs):
    """Deliver what a save outside ``atomic`` whose post_save never ran still owes."""
    capture.flush()


def settings_changed(*, setting, **kwargs):
    """setting_changed (tests, override_settings): drop what was built from CACHES / CACHELAYER / SECRET_KEY.

    The one settings reset: the settings memo first, then what was built from it."""
    if setting == "CACHELAYER":
        conf.reset()
    if setting in ("CACHELAYER", "CACHES"):
        reset_adapters()
    if setting in ("CACHELAYER", "CACHES", "SECRET_KEY", "SECRET_KEY_FALLBACKS"):
        registry.clear()  # definitions hold the payload signer, keyed from these


def configuration_changed(sender, instance, using=None, **kwargs):
    """Container / CachePolicy / ConfigOption saved or deleted: after commit,
    bump the configuration version on every cache so every process reloads
    (with the transaction's other invalidations: no callback can skip it)."""
    record_configuration(using, [instance.name] if isinstance(instance, Container) else [])
