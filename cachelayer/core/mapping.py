"""Validate a container mapping against its model, in one place.

Used by Container.clean() (admin and API saves), by the system checks and
by the registry, so a broken mapping is reported by ``manage.py check`` and
refused on save instead of failing at request time.
"""

from __future__ import annotations

import re
from collections import defaultdict

from django.conf import settings
from django.db import models

from cachelayer.core import backends, conf
from cachelayer.core.codec import column_type

COLUMN_SPLIT = re.compile(r"[\s,;|]+")  # InnoDB accepts these between column names
# incl. slug/email, Auto/Big/Small, DateTimeField (a DateField): types core/codec.py writes canonically
KEY_TYPES = (models.CharField, models.IntegerField, models.UUIDField, models.DecimalField, models.DateField)
INT_TYPES = (models.IntegerField,)
CAS_TYPES = (models.BigIntegerField, models.PositiveBigIntegerField)


def split_columns(spec: str) -> list[str]:
    """Return the column names of a ``key_columns``/``value_columns`` string."""
    return [name for name in COLUMN_SPLIT.split(spec or "") if name]


def _field(model, name):
    try:
        return model._meta.get_field(name)
    except Exception:
        return None


def unique_sets(model) -> list[set[str]]:
    """Return the sets of field names that identify at most one row (unique fields, a
    composite primary key's fields, unique constraints)."""
    sets = [{f.name} for f in model._meta.concrete_fields if f.unique]
    if isinstance(model._meta.pk, models.CompositePrimaryKey):
        sets.append({f.name for f in model._meta.pk.fields})
    sets += [set(together) for together in model._meta.unique_together]
    sets += [
        set(c.fields)
        for c in model._meta.constraints
        if isinstance(c, models.UniqueConstraint) and c.fields and c.condition is None
    ]
    return sets


def is_unique_key(model, names) -> bool:
    """Return True when the columns ``names`` identify at most one row (pk or a unique constraint)."""
    fields = {getattr(_field(model, name), "name", name) for name in names}  # "post_id" is "post"
    return any(unique <= fields for unique in unique_sets(model))


def _check_key(model, names, errors):
    """Check key columns; columns that are not unique make an index container (a key maps to a list of rows).

    A nullable column may be a key: a row whose key column is NULL is in no key
    (and in no list), as NULL equals nothing in SQL (core/codec.py)."""
    for name in names:
        field = _field(model, name)
        if field is None or not getattr(field, "concrete", False) or field.many_to_many:
            errors["key_columns"].append(f"{model._meta.label} has no column {name!r}.")
            continue
        typed = column_type(field)  # a foreign key: its target's type
        if not isinstance(typed, KEY_TYPES) or isinstance(typed, models.BooleanField):
            errors["key_columns"].append(
                f"Key column {name!r} is a {field.get_internal_type()}; use a char, integer, UUID, decimal, date or datetime field."
            )
    if not names:
        errors["key_columns"].append("Name at least one key column.")


def _check_typed(model, attr, name, types, what, errors):
    if not name:
        return
    field = _field(model, name)
    if field is None or not getattr(field, "concrete", False):
        errors[attr].append(f"{model._meta.label} has no column {name!r}.")
    elif not isinstance(field, types):
        errors[attr].append(f"Column {name!r} is a {field.get_internal_type()}; {what}.")


def validate_mapping(
    model, key_columns, value_columns="", flags_column="", cas_column="", expire_time_column=""
) -> tuple[dict[str, list[str]], list[str]]:
    """Return (errors by attribute, warnings) for a mapping onto ``model``."""
    errors: dict[str, list[str]] = defaultdict(list)
    warnings: list[str] = []
    _check_key(model, split_columns(key_columns), errors)
    values = split_columns(value_columns)
    for name in values:
        field = _field(model, name)
        if field is None or not getattr(field, "concrete", False) or field.many_to_many:
            errors["value_columns"].append(f"{model._meta.label} has no column {name!r}.")
        elif len(values) > 1 and not field.null and not field.has_default() and name != values[0]:
            warnings.append(
                f"Value column {name!r} is NOT NULL: a value with fewer parts than columns will be refused."
            )
    _check_typed(model, "flags_column", flags_column, INT_TYPES, "flags must be an integer", errors)
    _check_typed(model, "expire_time_column", expire_time_column, INT_TYPES, "expiry must be an integer", errors)
    _check_typed(model, "cas_column", cas_column, CAS_TYPES, "cas must be a 64-bit integer", errors)
    return dict(errors), warnings


def index_note(model, key_columns) -> str | None:
    """Return a sentence saying that a mapping is an index container, or None for a key container."""
    names = split_columns(key_columns)
    if not names or is_unique_key(model, names):
        return None
    return (
        f"index container: {', '.join(names)} is not unique, so a key maps to the list of "
        f"{model._meta.label} rows that hold it (ordered by primary key)."
    )


def validate_container(container) -> dict[str, list[str]]:
    """Return the errors of a Container row, by field name."""

    errors: dict[str, list[str]] = defaultdict(list)
    if container.name and (COLUMN_SPLIT.search(container.name) or "." in container.name or "@" in container.name):
        errors["name"].append("Use a name without blanks, '.', '@', ',', ';' or '|'.")
    model = container.content_type.model_class() if container.content_type_id else None
    if model is None:
        errors["content_type"].append("Choose an installed model.")
    else:
        found, _ = validate_mapping(
            model,
            container.key_columns,
            container.value_columns,
            container.flags_column,
            container.cas_column,
            container.expire_time_column,
        )
        for attr, messages in found.items():
            errors[attr].extend(messages)
    if container.database and container.database not in settings.DATABASES:
        errors["database"].append(f"No database alias {container.database!r} in DATABASES.")
    alias = container.cache_alias or conf.get("CACHE_ALIAS")
    if alias not in settings.CACHES:
        errors["cache_alias"].append(f"No cache alias {alias!r} in CACHES.")
    elif not backends.supported_backend(settings.CACHES[alias]["BACKEND"]):
        errors["cache_alias"].append(
            f"Cache {alias!r} uses {settings.CACHES[alias]['BACKEND']}; cachelayer supports "
            + ", ".join(backends.ADAPTERS)
        )
    return dict(errors)
