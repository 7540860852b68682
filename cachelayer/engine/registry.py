"""The in-process registry of container definitions.

Like MySQL's TABLE_SHARE, definitions are loaded once and kept. Every read
already fetches the configuration version key in its multi-get; when a
process sees a version it has not loaded, it reloads all definitions (one
query). An admin edit bumps that version after commit, so it takes effect
in every process on its next operation with no extra round trip.
"""

from __future__ import annotations

import threading
from typing import Any

from django.db import DatabaseError, router

from cachelayer import signals
from cachelayer.adapters.registry import get_adapter
from cachelayer.core import conf
from cachelayer.core.keys import config_key
from cachelayer.engine import database
from cachelayer.engine.definitions import Definition, Unreadable
from cachelayer.exceptions import ContainerNotFound, DatabaseUnavailable
from cachelayer.models import ConfigOption, Container

KNOWN_VERSIONS_LIMIT = 1000  # seen configuration versions kept before a forced reload


def container_name(model) -> str:
    """Return the name of a CachedModelMixin model's own container: ``app_model`` (no '.')."""
    return model._meta.label_lower.replace(".", "_")


class Registry:
    """Definitions by name and by model, reloaded when the config version moves."""

    def __init__(self):
        self._lock = threading.RLock()
        self.clear()

    def clear(self) -> None:
        self.by_name: dict[str, Definition] = {}
        self.by_model: dict[str, list[Definition]] = {}  # by concrete model label: historical models match
        self.default_name: str | None = None
        self.loaded = False
        self.loads = 0  # how many loads this process made: a caller that kept definitions sees a reload
        self._known: dict[str, set] = {}
        self._for_cached: dict[type, Definition] = {}
        self._sharing: dict[str, list[Definition]] = {}
        self._by_table: dict[str, list[Definition]] = {}
        self._unreadable: dict[str, list[Unreadable]] = {}  # by table
        signals.definitions_changed.send(sender=Registry, loaded=False)

    def load(self) -> None:
        """Read every container, policy and option (one query each).

        Raises DatabaseUnavailable when the database cannot be reached; missing
        tables (before ``migrate``) leave nothing mapped.
        """
        with self._lock:
            # Read before the definitions: a load is at least as new as this version,
            # so the first read that sees it needs no second load.
            cache_alias = conf.get("CACHE_ALIAS")
            seen = self.config_version(cache_alias)
            alias = router.db_for_read(Container)
            try:
                with database.guarded(alias):
                    options: dict[Any, str] = {
                        **ConfigOption.DEFAULTS,
                        **dict(ConfigOption.objects.values_list("name", "value")),
                    }
                    rows = list(Container.objects.select_related("policy", "content_type"))
            except DatabaseError as exc:
                if database.unreachable(alias):  # the definitions loaded before, if any, stay
                    raise DatabaseUnavailable(alias, exc) from exc
                self.by_name, self.by_model, self.loaded = {}, {}, False  # not migrated yet: nothing is mapped
                self._by_table, self._sharing, self._unreadable = {}, {}, {}
                signals.definitions_changed.send(sender=Registry, loaded=False)
                return
            by_name: dict[str, Definition]
            by_model: dict[str, list[Definition]]
            by_name, by_model = {}, {}
            unreadable: dict[str, list[Unreadable]] = {}
            for row in rows:
                model = row.content_type.model_class()
                if model is None:
                    continue
                try:
                    definition = Definition(
                        row, model, options[ConfigOption.Name.SEPARATOR], options[ConfigOption.Name.TABLE_MAP_DELIMITER]
                    )
                except Exception:  # reported by checks, never served; still outdated by writes
                    for table in tables(model):
                        unreadable.setdefault(table, []).append(Unreadable(row, model))
                    continue
                by_name[row.name] = definition
                assert model._meta.concrete_model is not None  # a content type's model is never abstract
                by_model.setdefault(model._meta.concrete_model._meta.label_lower, []).append(definition)
            enabled = sorted(name for name, d in by_name.items() if d.enabled)
            self.default_name = "default" if "default" in enabled else (enabled[0] if enabled else None)
            by_table: dict[str, list[Definition]] = {}
            for definition in by_name.values():
                for table in tables(definition.model):
                    by_table.setdefault(table, []).append(definition)
            self.by_name, self.by_model, self._by_table, self.loaded = by_name, by_model, by_table, True
            self._unreadable = unreadable
            self.loads += 1
            self._for_cached, self._sharing = {}, {}  # after by_name: see for_cached_model
            if cache_alias in seen:
                self._known.setdefault(cache_alias, set()).add(seen[cache_alias])
            signals.definitions_changed.send(sender=Registry, loaded=True)  # under the lock: one at a time

    @staticmethod
    def config_version(alias: str) -> dict[str, int]:
        """Return ``{alias: version}`` of a cache's configuration version, or ``{}``
        when it holds none, cannot be read now, or is not a cache cachelayer supports."""
        try:
            adapter = get_adapter(alias)
        except KeyError:  # not a cache cachelayer supports: the checks say so
            return {}
        key = config_key(conf.get("KEY_PREFIX"))
        value = adapter.fetch({None: [key]}).value(key)
        return {} if value is None else {alias: int(value)}

    def mark_stale(self) -> None:
        """Reload on the next lookup (this process made an edit: no need to wait for the version)."""
        self.loaded = False
        signals.definitions_changed.send(sender=Registry, loaded=False)

    def _ensure_loaded(self):
        if not self.loaded:
            self.load()

    def get(self, name: str) -> Definition:
        """Return an enabled container by name (reloading once for a new one)."""
        self._ensure_loaded()
        definition = self.by_name.get(name)
        if definition is None:
            self.load()
            definition = self.by_name.get(name)
        if definition is None or not definition.enabled:
            state = "is disabled" if definition else "does not exist"
            raise ContainerNotFound(f"container {name!r} {state}")
        return definition

    def default(self) -> Definition:
        """Return the default container: 'default', else the first by name."""
        self._ensure_loaded()
        if self.default_name is None:
            raise ContainerNotFound("no enabled container exists")
        return self.get(self.default_name)

    def definitions(self, *, enabled: bool = False) -> list[Definition]:
        """Return the loaded definitions by name (only the enabled ones with ``enabled``)."""
        self._ensure_loaded()
        return [d for _, d in sorted(self.by_name.items()) if d.enabled or not enabled]

    def find(self, name: str) -> Definition | None:
        """Return the loaded definition named ``name`` (enabled or not), or None; never reloads."""
        return self.by_name.get(name)

    def cache_aliases(self, *, enabled: bool = False) -> list[str]:
        """Return ``CACHE_ALIAS`` and every cache a container (an enabled one, with ``enabled``) uses."""
        return sorted({conf.get("CACHE_ALIAS"), *(d.cache_alias for d in self.definitions(enabled=enabled))})

    def for_model(self, model) -> list[Definition]:
        """Return every container (enabled or not) that maps ``model``."""
        self._ensure_loaded()
        return self.by_model.get(model._meta.concrete_model._meta.label_lower, [])

    def sharing_rows(self, model) -> list[Definition]:
        """Return every container whose model keeps rows in a table ``model`` writes.

        Found by table, not by model: with multi-table inheritance a child's row
        is also a row of each parent's table, and two models may map one
        ``db_table`` (an unmanaged writer or reporting model), so a write
        through either changes what both cache. Remembered as
        ``for_cached_model`` is."""
        memo = self._sharing
        self._ensure_loaded()
        label = model._meta.concrete_model._meta.label_lower
        found = memo.get(label)
        if found is None:
            found = memo[label] = list(
                {id(d): d for table in sorted(tables(model)) for d in self._by_table.get(table, ())}.values()
            )
        return found

    def unreadable(self, model) -> list[Unreadable]:
        """Return the containers of rows ``model`` writes that this process's code
        cannot read (definitions.Unreadable): a write bumps their generations."""
        self._ensure_loaded()
        if not self._unreadable:  # the usual case: every write asks, so no table walk for nothing
            return []
        return list({id(u): u for table in sorted(tables(model)) for u in self._unreadable.get(table, ())}.values())

    def for_cached_model(self, model) -> Definition:
        """Return the container a CachedModelMixin model reads through.

        Remembered until the next load. The memo is taken before the lookup
        and a load replaces it after ``by_name``, so an answer computed from
        old definitions can only land in a memo already thrown away.
        """
        memo = self._for_cached
        definition = memo.get(model) if self.loaded else None
        if definition is None:
            definition = memo[model] = self._look_up_cached_model(model)
        return definition

    def _look_up_cached_model(self, model) -> Definition:
        name = container_name(model)
        try:
            return self.get(name)
        except ContainerNotFound:
            mapped = [d for d in self.for_model(model) if d.enabled]
            if not mapped:
                raise ContainerNotFound(
                    f"no enabled container maps {model._meta.label}; run migrate or add one in the admin"
                ) from None
            return mapped[0]

    def knows(self, alias: str, version) -> bool:
        """Return whether definitions were loaded at (or after) ``version`` of cache ``alias``."""
        known = self._known.get(alias)
        return known is not None and version in known

    def observe(self, alias: str, version) -> bool:
        """Note a configuration version read from cache ``alias``; reload if new.

        Returns True when definitions were reloaded (callers start over).
        """
        known = self._known.get(alias)
        if known is not None and version in known:
            return False
        with self._lock:
            known = self._known.setdefault(alias, set())
            if version in known:
                return False
            if len(known) > KNOWN_VERSIONS_LIMIT:
                known.clear()
            self.load()  # definitions now at least as new as ``version``
            self._known[alias].add(version)
            return True


registry = Registry()


def lineage(model) -> set[str]:
    """Return the labels of a concrete model and of its multi-table parents."""
    concrete = model._meta.concrete_model
    return {concrete._meta.label_lower, *(parent._meta.label_lower for parent in concrete._meta.get_parent_list())}


def tables(model) -> set[str]:
    """Return the tables a model's rows live in: its concrete model's and its multi-table parents'."""
    concrete = model._meta.concrete_model
    return {concrete._meta.db_table, *(parent._meta.db_table for parent in concrete._meta.get_parent_list())}


def resolve(name_or_model) -> Definition:
    """Return the definition for a container name, a model, or None (default)."""
    if name_or_model is None:
        return registry.default()
    if isinstance(name_or_model, str):
        return registry.get(name_or_model)
    return registry.for_cached_model(name_or_model)
