"""System checks: the CACHELAYER settings and every container mapping.

cachelayer.E001  CACHELAYER is not a dict / has an unknown key
cachelayer.E002  a CACHELAYER value has the wrong type or range
cachelayer.E003  CACHE_ALIAS is not a supported cache in CACHES
cachelayer.E004  a cache's OPTIONS hold a name its memcached client does not take
cachelayer.E005  MONITOR_TARGETS names a delay MONITOR_DELAYS does not measure (tasks/monitorsettings.py,
                 which checks the other MONITOR_* values too: E002)
cachelayer.E010  a container mapping does not fit its model (database check)
cachelayer.W010  a container mapping may refuse some writes (database check)
cachelayer.I010  a container is an index container: its key columns are not unique (database check)
cachelayer.W011  a mapped model has a manager whose update()/bulk writes do not invalidate
cachelayer.W012  a mixin model's container maps other columns than the model declares (database check)
cachelayer.W013  a container stores a field whose values the configured SERIALIZER may not carry
                 (database check)
cachelayer.W014  models share a table a container maps (mixin models; the others: database check)
cachelayer.W020  containers on MySQL/MariaDB whose binlog no follower followed (tasks/follow/checks.py)
cachelayer.W050  NEAR_CACHE is on but the default cache is not Redis (no near-cache there)
cachelayer.E030  an exposed container maps a model holding credentials or sessions beyond what
                 PROTOCOL_SENSITIVE_ALLOWED permits (database check)
cachelayer.I040  a key column's collation holds different strings equal; cachelayer folds its keys
                 exactly (database check)
cachelayer.W040  a key column's collation holds different strings equal in a way cachelayer cannot
                 fold exactly: the container's reads go to the database (database check)
"""

from __future__ import annotations

import re
from typing import cast

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Info, Tags, Warning, register
from django.db import DatabaseError, router
from django.db.models import Field

from cachelayer.core import backends, conf, policies, sensitivity
from cachelayer.core.mapping import index_note, split_columns, validate_container, validate_mapping
from cachelayer.core.serializers import SERIALIZERS, get_serializer
from cachelayer.engine import collations, database
from cachelayer.engine.definitions import Definition
from cachelayer.mixins import CachedModelMixin, CachedQuerySet
from cachelayer.models import ConfigOption, Container
from cachelayer.tasks import monitorsettings
from cachelayer.tasks.autocontainers import cached_models, declared_containers, mapping_drift

POSITIVE_NUMBERS = (
    "LEASE_TIMEOUT",
    "LEASE_POLL_INTERVAL",
    "BREAKER_COOLDOWN",
    "STATS_INTERVAL",
    "SOCKET_TIMEOUT",
    "POOL_TIMEOUT",
    "POOL_MEMBERSHIP_TTL",
    "NEAR_CACHE_TIMEOUT",
    "NEAR_CACHE_MAX_LAG",
)
NON_NEGATIVE_INTS = ("TIMEOUT", "VERSION_TIMEOUT", "UPDATE_KEYS_LIMIT")
NEAR_CACHE_SIZES = ("NEAR_CACHE_MAX_ENTRIES", "NEAR_CACHE_MAX_BYTES")
POSITIVE_INTS = ("BREAKER_THRESHOLD", "INDEX_MAX_ROWS", "OUTBOX_LIMIT", "CHUNK_KEYS", *NEAR_CACHE_SIZES)
BOOLEANS = ("NEAR_CACHE", "REQUEST_MEMO")


def _settings_errors(user) -> list[Error]:
    errors = []
    for name in sorted(set(user) - set(conf.DEFAULTS)):
        errors.append(
            Error(
                f"Unknown CACHELAYER setting {name!r}.", hint="Known: " + ", ".join(conf.DEFAULTS), id="cachelayer.E001"
            )
        )
    value = {**conf.DEFAULTS, **user}
    for name in POSITIVE_NUMBERS:
        if not isinstance(value[name], (int, float)) or value[name] <= 0:
            errors.append(Error(f"CACHELAYER[{name!r}] must be a positive number.", id="cachelayer.E002"))
    for name in NON_NEGATIVE_INTS:
        if not isinstance(value[name], int) or value[name] < 0:
            errors.append(Error(f"CACHELAYER[{name!r}] must be a non-negative integer.", id="cachelayer.E002"))
    for name in POSITIVE_INTS:
        if not isinstance(value[name], int) or value[name] < 1:
            errors.append(Error(f"CACHELAYER[{name!r}] must be a positive integer.", id="cachelayer.E002"))
    for name in BOOLEANS:
        if not isinstance(value[name], bool):
            errors.append(Error(f"CACHELAYER[{name!r}] must be True or False.", id="cachelayer.E002"))
    size = value["MAX_ITEM_SIZE"]
    if size is not None and (not isinstance(size, int) or size < 1):
        errors.append(
            Error("CACHELAYER['MAX_ITEM_SIZE'] must be None or a positive integer (bytes).", id="cachelayer.E002")
        )
    if value["SERIALIZER"] not in SERIALIZERS:
        errors.append(Error("CACHELAYER['SERIALIZER'] must be one of " + ", ".join(SERIALIZERS), id="cachelayer.E002"))
    fallbacks = value["PAYLOAD_KEY_FALLBACKS"]
    secrets = [value["PAYLOAD_KEY"], *fallbacks] if isinstance(fallbacks, (list, tuple)) else [None]
    if value["PAYLOAD_KEY"] is not None and not all(isinstance(s, (str, bytes)) and s for s in secrets):
        errors.append(
            Error(
                "CACHELAYER['PAYLOAD_KEY'] must be None (derived from SECRET_KEY) or a non-empty string or bytes, "
                "and PAYLOAD_KEY_FALLBACKS a list of them.",
                id="cachelayer.E002",
            )
        )
    if not isinstance(value["KEY_PREFIX"], str) or not value["KEY_PREFIX"] or len(value["KEY_PREFIX"]) > 64:
        errors.append(
            Error("CACHELAYER['KEY_PREFIX'] must be a non-empty string of at most 64 characters.", id="cachelayer.E002")
        )
    errors += _protocol_errors(value)
    errors += monitorsettings.errors(value)
    alias = value["CACHE_ALIAS"]
    if alias not in settings.CACHES:
        errors.append(Error(f"CACHELAYER['CACHE_ALIAS'] = {alias!r} is not in CACHES.", id="cachelayer.E003"))
    elif not backends.supported_backend(settings.CACHES[alias]["BACKEND"]):
        errors.append(
            Error(
                f"Cache {alias!r} uses {settings.CACHES[alias]['BACKEND']}, which cachelayer does not support.",
                hint="Use one of " + ", ".join(backends.ADAPTERS),
                id="cachelayer.E003",
            )
        )
    for name, params in settings.CACHES.items():
        backend = params.get("BACKEND", "")
        unknown = backends.unknown_options(backend, params.get("OPTIONS") or {})
        if unknown:
            errors.append(Error(backends.options_error(name, backend, unknown), id="cachelayer.E004"))
    return errors


def _protocol_errors(value) -> list[Error]:
    """Check the cache_serve settings' shapes (a typo here must not widen access)."""
    errors = []
    if value["PROTOCOL_AUTH_FILE"] is not None and not isinstance(value["PROTOCOL_AUTH_FILE"], str):
        errors.append(Error("CACHELAYER['PROTOCOL_AUTH_FILE'] must be None or a path.", id="cachelayer.E002"))
    access = value["PROTOCOL_ACCESS"]
    if not isinstance(access, dict) or not all(
        isinstance(rules, dict) and all(level in sensitivity.GRANTS for level in rules.values())
        for rules in access.values()
    ):
        errors.append(
            Error(
                "CACHELAYER['PROTOCOL_ACCESS'] must map usernames to {container name or '*': 'read' | 'write'}.",
                id="cachelayer.E002",
            )
        )
    allowed = value["PROTOCOL_SENSITIVE_ALLOWED"]
    if not isinstance(allowed, dict) or not all(level in sensitivity.GRANTS for level in allowed.values()):
        errors.append(
            Error(
                "CACHELAYER['PROTOCOL_SENSITIVE_ALLOWED'] must map model labels to 'read' or 'write'.",
                hint="e.g. {'auth.User': 'read'}",
                id="cachelayer.E002",
            )
        )
    if not isinstance(value["PROTOCOL_SENSITIVE_MODELS"], (list, tuple)):
        errors.append(
            Error("CACHELAYER['PROTOCOL_SENSITIVE_MODELS'] must be a list of model labels.", id="cachelayer.E002")
        )
    try:
        re.compile(value["PROTOCOL_SENSITIVE_FIELDS"])
    except (TypeError, re.error):
        errors.append(
            Error("CACHELAYER['PROTOCOL_SENSITIVE_FIELDS'] must be a regular expression.", id="cachelayer.E002")
        )
    return errors


@register(Tags.caches, "cachelayer")
def check_settings(app_configs=None, **kwargs):
    user = conf.user_settings()
    if not isinstance(user, dict):
        return [Error("CACHELAYER must be a dict.", id="cachelayer.E001")]
    return _settings_errors(user) + _near_cache_warnings(user)


NEAR_CACHE_BACKEND = "django_redis.cache.RedisCache"  # the one adapter with a push channel (adapters/nearcache.py)


def _near_cache_warnings(user) -> list[CheckMessage]:
    alias = user.get("CACHE_ALIAS", conf.DEFAULTS["CACHE_ALIAS"])
    backend = settings.CACHES.get(alias, {}).get("BACKEND", NEAR_CACHE_BACKEND)  # no such cache: E003
    if user.get("NEAR_CACHE") is not True or backend == NEAR_CACHE_BACKEND:
        return []
    message = f"CACHELAYER['NEAR_CACHE'] is on, but cache {alias!r} is not Redis: its containers get no near-cache."
    hint = "memcached has no push channel: use REQUEST_MEMO (or cachelayer.memo()) there."
    return [Warning(message, hint=hint, id="cachelayer.W050")]


UNCOVERED = "QuerySet.update(), bulk_create() and bulk_update()"


def check_managers(models) -> list[Warning]:
    """Warn about each manager of ``models`` whose queryset is not a CachedQuerySet.

    Those three paths send no signal, so only cachelayer's queryset can see
    them; through any other manager they leave the cache stale.
    """
    found = []
    for model in models:
        if model._meta.auto_created:  # an m2m through table: written by its relation managers, which m2m_changed covers
            continue
        careless = [m.name for m in model._meta.managers if not issubclass(m._queryset_class, CachedQuerySet)]
        if careless:
            unlocked = (
                ""
                if issubclass(model, CachedModelMixin)
                else (
                    " Its save() outside atomic() also reads the key a row had without locking it, so a key "
                    "another writer sets in between can stay cached."
                )
            )
            found.append(
                Warning(
                    f"{model._meta.label} is cached, but {UNCOVERED} through its manager(s) "
                    f"{', '.join(repr(name) for name in careless)} do not invalidate the cache.{unlocked}",
                    hint="Make the model a cachelayer.CachedModelMixin and build every manager on "
                    "cachelayer.CachedQuerySet (CachedManager, CachedQuerySet.as_manager(), "
                    "YourManager.from_queryset(YourQuerySet(CachedQuerySet))). Writers that cannot: "
                    "run manage.py cache_follow, or call cachelayer.invalidate() after them.",
                    obj=model,
                    id="cachelayer.W011",
                )
            )
    return found


def check_shared_tables(mapped) -> list[Warning]:
    """Name every other model that writes a table one of ``mapped`` keeps its rows in.

    Writes through any of them outdate the containers: containers are found
    by table (engine/registry.py). The warning says so, because each model's
    managers must be built on CachedQuerySet for update() and the bulk
    paths, and a model nobody knew about is worth a look."""
    by_table: dict[str, list] = {}
    for model in apps.get_models():
        if not model._meta.proxy:
            by_table.setdefault(model._meta.db_table, []).append(model)
    found = []
    for model in mapped:
        others = [m for m in by_table.get(model._meta.db_table, ()) if m._meta.concrete_model is not model]
        if others:
            found.append(
                Warning(
                    f"{model._meta.label} is cached, and {', '.join(m._meta.label for m in others)} "
                    f"also map(s) its table {model._meta.db_table!r}.",
                    hint="A save() or delete() through either outdates the containers of both (found by table). "
                    "Build every manager of each on cachelayer.CachedQuerySet so update() and the bulk writes "
                    "do too (W011), or make one of them the only writer.",
                    obj=model,
                    id="cachelayer.W014",
                )
            )
    return found


@register(Tags.models, "cachelayer")
def check_cached_models(app_configs=None, **kwargs):
    models = cached_models()
    return check_managers(models) + check_shared_tables(models)


@register(Tags.database, "cachelayer")
def check_containers(app_configs=None, databases=None, **kwargs):
    if not databases:
        return []
    found: list[CheckMessage] = []
    try:
        with database.guarded(router.db_for_read(Container)):
            rows = list(Container.objects.select_related("content_type", "policy"))
    except DatabaseError:
        return []  # not migrated yet
    declaring = {model._meta.label_lower: model for model in cached_models()}
    mapped = {row.content_type.model_class() for row in rows} - {None} - set(declaring.values())
    found += check_managers(sorted(mapped, key=lambda model: model._meta.label))
    found += check_shared_tables(sorted(mapped, key=lambda model: model._meta.label))
    found += _drift_warnings(rows)
    found += _exposure_errors(rows)
    found += _serializer_warnings(rows)
    for row in rows:
        for field, messages in validate_container(row).items():
            for message in messages:
                found.append(Error(f"Container {row.name!r}: {field}: {message}", obj=row, id="cachelayer.E010"))
        model = row.content_type.model_class()
        if model is not None:
            _, warnings = validate_mapping(model, row.key_columns, row.value_columns)
            found += [Warning(f"Container {row.name!r}: {w}", obj=row, id="cachelayer.W010") for w in warnings]
            note = index_note(model, row.key_columns)
            if note:
                found.append(Info(f"Container {row.name!r} is an {note}", obj=row, id="cachelayer.I010"))
    return found


def _exposure_errors(rows) -> list[Error]:
    """Report exposed containers of sensitive models that the admin would now refuse (rows saved before)."""
    found = []
    for row in rows:
        model = row.content_type.model_class()
        if model is None:
            continue
        for field, messages in sensitivity.exposure_errors(model, row.exposed, policies.of(row.policy)).items():
            found += [
                Error(
                    f"Container {row.name!r}: {field}: {message}",
                    hint="Unexpose it, or give it a cache_only flush policy (and a cache_only set/delete "
                    "policy where only reads are allowed); cache_serve refuses it meanwhile.",
                    obj=row,
                    id="cachelayer.E030",
                )
                for message in messages
            ]
    return found


def _drift_warnings(rows) -> list[Warning]:
    """Warn where a container a mixin model declares (its own, or an index) maps other columns than declared."""
    found = []
    declared = declared_containers()
    for row in rows:
        if row.name not in declared:
            continue
        model, mapping = declared[row.name]
        for column, wanted in mapping_drift(row, mapping).items():
            found.append(
                Warning(
                    f"Container {row.name!r} maps {column} {getattr(row, column)!r}, but "
                    f"{model._meta.label} declares {wanted!r}.",
                    hint="Run migrate: it applies the declaration."
                    if row.declared
                    else "It was edited in the admin, so migrate leaves it alone: edit it to match, or delete "
                    "it and run migrate.",
                    obj=row,
                    id="cachelayer.W012",
                )
            )
    return found


def _serializer_warnings(rows) -> list[Warning]:
    """Warn where a container stores a field whose values the configured serializer may not carry."""
    found: list[Warning] = []
    serializer, name = get_serializer(), conf.get("SERIALIZER")
    for row in rows:
        model = row.content_type.model_class()
        if model is None:
            continue
        try:
            fields = Definition(row, model, *ConfigOption.DEFAULTS.values()).stored_fields
        except Exception:
            continue  # a mapping that does not fit its model: E010
        found += [
            Warning(
                f"Container {row.name!r} stores {model._meta.label}.{field.name} ({type(field).__name__}), whose "
                f"values the {name!r} serializer may not carry: rows it cannot encode are never cached "
                "(read from the database, counted as errors).",
                hint="Give the field cache_encode(value) and cache_decode(value) methods that turn its values into "
                "what the serializer carries and back (docs/consistency.md, 'Payload format'), or leave it out of value_columns.",
                obj=row,
                id="cachelayer.W013",
            )
            for field in fields
            if not serializer.carries(field)
        ]
    return found


@register(Tags.database, "cachelayer")
def check_collations(app_configs=None, databases=None, **kwargs):
    """Name every key column whose collation holds different strings equal, and what cachelayer does."""
    if not databases:
        return []
    try:
        with database.guarded(router.db_for_read(Container)):
            rows = list(Container.objects.select_related("content_type"))
    except DatabaseError:
        return []  # not migrated yet
    found: list[CheckMessage] = []
    for row in rows:
        model = row.content_type.model_class()
        if model is None or validate_container(row):
            continue  # E010 reports it
        alias = row.database or router.db_for_write(model)
        for name in split_columns(row.key_columns):
            field = cast(Field, model._meta.get_field(name))  # validate_container: a concrete column
            try:
                with database.guarded(alias):
                    rule = collations.rule_of(alias, model, field)
            except DatabaseError:
                continue  # a database this check cannot reach: reads find out
            if rule is None or not rule.folds:
                continue
            message = (
                f"Container {row.name!r}: key column {model._meta.db_table}.{field.column} has collation "
                f"{rule.collation}: {rule.describe()}."
            )
            if rule.exact:
                found.append(Info(message, obj=row, id=collations.FOLDED_EXACTLY))
            else:
                found.append(Warning(message, obj=row, id=collations.NOT_FOLDED))
    return found
