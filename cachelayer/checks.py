"""System checks: the CACHELAYER settings and every container mapping.

cachelayer.E001  CACHELAYER is not a dict / has an unknown key
cachelayer.E002  a CACHELAYER value has the wrong type or range
cachelayer.E003  CACHE_ALIAS is not a supported cache in CACHES
cachelayer.E010  a container mapping does not fit its model (database check)
cachelayer.W010  a container mapping may refuse some writes (database check)
cachelayer.W020  containers on MySQL/MariaDB whose binlog no follower followed (follower/checks.py)
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError

from cachelayer import adapters, conf
from cachelayer.serializers import SERIALIZERS

POSITIVE_NUMBERS = ("LEASE_TIMEOUT", "LEASE_POLL_INTERVAL", "BREAKER_COOLDOWN", "STATS_INTERVAL", "SOCKET_TIMEOUT")
NON_NEGATIVE_INTS = ("TIMEOUT", "VERSION_TIMEOUT", "UPDATE_KEYS_LIMIT")
POSITIVE_INTS = ("BREAKER_THRESHOLD",)


def _settings_errors(user) -> list[Error]:
    errors = []
    for name in sorted(set(user) - set(conf.DEFAULTS)):
        errors.append(Error(f"Unknown CACHELAYER setting {name!r}.", hint="Known: " + ", ".join(conf.DEFAULTS), id="cachelayer.E001"))
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
    size = value["MAX_ITEM_SIZE"]
    if size is not None and (not isinstance(size, int) or size < 1):
        errors.append(Error("CACHELAYER['MAX_ITEM_SIZE'] must be None or a positive integer (bytes).", id="cachelayer.E002"))
    if value["SERIALIZER"] not in SERIALIZERS:
        errors.append(Error("CACHELAYER['SERIALIZER'] must be one of " + ", ".join(SERIALIZERS), id="cachelayer.E002"))
    if not isinstance(value["KEY_PREFIX"], str) or not value["KEY_PREFIX"] or len(value["KEY_PREFIX"]) > 64:
        errors.append(Error("CACHELAYER['KEY_PREFIX'] must be a non-empty string of at most 64 characters.", id="cachelayer.E002"))
    alias = value["CACHE_ALIAS"]
    if alias not in settings.CACHES:
        errors.append(Error(f"CACHELAYER['CACHE_ALIAS'] = {alias!r} is not in CACHES.", id="cachelayer.E003"))
    elif not adapters.supported_backend(settings.CACHES[alias]["BACKEND"]):
        errors.append(
            Error(
                f"Cache {alias!r} uses {settings.CACHES[alias]['BACKEND']}, which cachelayer does not support.",
                hint="Use one of " + ", ".join(adapters.ADAPTERS),
                id="cachelayer.E003",
            )
        )
    return errors


@register(Tags.caches, "cachelayer")
def check_settings(app_configs=None, **kwargs):
    user = conf.user_settings()
    if not isinstance(user, dict):
        return [Error("CACHELAYER must be a dict.", id="cachelayer.E001")]
    return _settings_errors(user)


@register(Tags.database, "cachelayer")
def check_containers(app_configs=None, databases=None, **kwargs):
    from cachelayer.mapping import validate_container, validate_mapping
    from cachelayer.models import Container

    if not databases:
        return []
    found = []
    try:
        rows = list(Container.objects.select_related("content_type"))
    except DatabaseError:
        return []  # not migrated yet
    for row in rows:
        for field, messages in validate_container(row).items():
            for message in messages:
                found.append(Error(f"Container {row.name!r}: {field}: {message}", obj=row, id="cachelayer.E010"))
        model = row.content_type.model_class()
        if model is not None:
            _, warnings = validate_mapping(model, row.key_columns, row.value_columns)
            found += [Warning(f"Container {row.name!r}: {w}", obj=row, id="cachelayer.W010") for w in warnings]
    return found
