"""The in-process registry of container definitions.

Like MySQL's TABLE_SHARE, definitions are loaded once and kept. Every read
already fetches the configuration version key in its multi-get; when a
process sees a version it has not loaded, it reloads all definitions (one
query). An admin edit bumps that version after commit, so it takes effect
in every process on its next operation with no extra round trip.
"""

from __future__ import annotations

import hashlib
import threading

from django.core.exceptions import ValidationError
from django.db import DatabaseError, router

from cachelayer import conf, policies
from cachelayer.adapters import Adapter, get_adapter
from cachelayer.exceptions import ContainerNotFound, OperationDisabled
from cachelayer.keys import KeySpace, join_parts, split_parts
from cachelayer.mapping import split_columns
from cachelayer.serializers import get_serializer

KNOWN_VERSIONS_LIMIT = 1000  # seen configuration versions kept before a forced reload


class Definition:
    """An immutable, ready-to-use view of one Container row."""

    def __init__(self, row, model, separator: str, delimiter: str):
        self.name = row.name
        self.model = model
        self.database = row.database
        meta = model._meta
        field = meta.get_field
        self.key_fields = [field(name) for name in split_columns(row.key_columns)]
        self.flags_field = field(row.flags_column) if row.flags_column else None
        self.cas_field = field(row.cas_column) if row.cas_column else None
        self.expire_field = field(row.expire_time_column) if row.expire_time_column else None
        special = {f for f in (self.flags_field, self.cas_field, self.expire_field) if f}
        named = [field(name) for name in split_columns(row.value_columns)]
        self.whole_row = not named
        self.value_fields = named or [
            f for f in meta.concrete_fields if f not in self.key_fields and f not in special and not f.primary_key
        ]
        wanted = {meta.pk, *self.key_fields, *self.value_fields, *special}
        self.stored = [f.attname for f in meta.concrete_fields if self.whole_row or f in wanted]
        self.positions = {attname: i for i, attname in enumerate(self.stored)}
        self.policies = {
            name: getattr(row.policy, name) if row.policy_id else default
            for name, default in policies.DEFAULTS.items()
        }
        self.timeout = conf.get("TIMEOUT") if row.timeout is None else row.timeout
        self.cache_alias = row.cache_alias or conf.get("CACHE_ALIAS")
        self.enabled, self.exposed = row.enabled, row.exposed
        self.separator, self.delimiter = separator, delimiter
        self.keys = KeySpace(conf.get("KEY_PREFIX"), row.name)
        self.serializer = get_serializer()  # chosen once: settings changes reload every definition
        self.schema = hashlib.blake2b(
            repr(
                (
                    meta.label, meta.db_table, row.key_columns, row.value_columns, row.flags_column,
                    row.cas_column, row.expire_time_column, separator,
                    [(f.attname, f.get_internal_type(), f.null) for f in meta.concrete_fields],
                )
            ).encode(),
            digest_size=6,
        ).hexdigest()

    def __repr__(self):
        return f"<Definition {self.name} -> {self.model._meta.label}>"

    @property
    def adapter(self) -> Adapter:
        return get_adapter(self.cache_alias)

    def db_alias(self) -> str:
        """Fill from the database writes go to, never from a lagging replica."""
        return self.database or router.db_for_write(self.model)

    def policy(self, operation: str) -> str:
        """Return the policy of an operation, refusing a disabled one."""
        field = policies.POLICY_FIELD[operation]
        value = self.policies[field]
        if value == policies.Policy.DISABLED:
            raise OperationDisabled(self.name, operation, field)
        return value

    def user_key(self, key) -> str:
        """Return the canonical string form of a key.

        Several key columns take a tuple of parts, or the string ``join_parts``
        makes of them (what cache_serve clients send).
        """
        parts = key if isinstance(key, (tuple, list)) else (key,)
        if len(self.key_fields) == 1 or len(parts) == 1:
            return parts[0] if isinstance(parts[0], str) else str(parts[0])
        return join_parts([str(part) for part in parts], self.separator)

    def lookup(self, user_key: str) -> dict | None:
        """Return the ORM filter for a key, or None when no row can have it."""
        parts = [user_key] if len(self.key_fields) == 1 else split_parts(user_key, self.separator)
        if parts is None or len(parts) != len(self.key_fields):
            return None
        try:
            return {f.attname: f.to_python(part) for f, part in zip(self.key_fields, parts)}
        except ValidationError:
            return None

    def key_from(self, values) -> str:
        """Return the user key of a row given as ``{attname: value}``."""
        return self.user_key([values[f.attname] for f in self.key_fields])

    def key_of(self, row) -> str:
        """Return the user key of a stored row (a tuple in ``stored`` order)."""
        return self.user_key([row[self.positions[f.attname]] for f in self.key_fields])

    def key_of_instance(self, instance) -> str:
        return self.key_from({f.attname: getattr(instance, f.attname) for f in self.key_fields})


class Registry:
    """Definitions by name and by model, reloaded when the config version moves."""

    def __init__(self):
        self._lock = threading.RLock()
        self.clear()

    def clear(self) -> None:
        self.by_name: dict[str, Definition] = {}
        self.by_model: dict[type, list[Definition]] = {}
        self.default_name: str | None = None
        self.loaded = False
        self._known: dict[str, set] = {}
        self._for_cached: dict[type, Definition] = {}

    def load(self) -> None:
        """Read every container, policy and option (one query each)."""
        from cachelayer.models import ConfigOption, Container

        with self._lock:
            try:
                options = {**ConfigOption.DEFAULTS, **dict(ConfigOption.objects.values_list("name", "value"))}
                rows = list(Container.objects.select_related("policy", "content_type"))
            except DatabaseError:  # tables not migrated yet: nothing is mapped
                self.by_name, self.by_model, self.loaded = {}, {}, False
                return
            by_name, by_model = {}, {}
            for row in rows:
                model = row.content_type.model_class()
                if model is None:
                    continue
                try:
                    definition = Definition(
                        row, model, options[ConfigOption.Name.SEPARATOR], options[ConfigOption.Name.TABLE_MAP_DELIMITER]
                    )
                except Exception:  # a broken row is reported by checks, never served
                    continue
                by_name[row.name] = definition
                by_model.setdefault(model._meta.concrete_model, []).append(definition)
            enabled = sorted(name for name, d in by_name.items() if d.enabled)
            self.default_name = "default" if "default" in enabled else (enabled[0] if enabled else None)
            self.by_name, self.by_model, self.loaded = by_name, by_model, True
            self._for_cached = {}  # after by_name: see for_cached_model

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

    def for_model(self, model) -> list[Definition]:
        """Return every container (enabled or not) that maps ``model``."""
        self._ensure_loaded()
        return self.by_model.get(model._meta.concrete_model, [])

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
        from cachelayer.autocontainers import container_name

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


def resolve(name_or_model) -> Definition:
    """Return the definition for a container name, a model, or None (default)."""
    if name_or_model is None:
        return registry.default()
    if isinstance(name_or_model, str):
        return registry.get(name_or_model)
    return registry.for_cached_model(name_or_model)

