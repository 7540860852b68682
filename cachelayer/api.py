"""The two public functions: ``repository()`` and ``invalidate()``."""

from __future__ import annotations

from django.db import router

from cachelayer.engine.invalidation import invalidate_container, invalidate_keys
from cachelayer.engine.registry import resolve
from cachelayer.repositories import Repository


def repository(name_or_model=None) -> Repository:
    """Return the memcached-style repository of a container (name, model, or the default)."""
    resolve(name_or_model)  # fail early on an unknown container
    return Repository(name_or_model)


def invalidate(name_or_model, keys=None, using: str | None = None) -> None:
    """Outdate ``keys`` of a container (all of them when None) after the current commit.

    For writes cachelayer cannot see, such as raw SQL.
    """
    definition = resolve(name_or_model)
    using = using or definition.database or router.db_for_write(definition.model)
    if keys is None:
        invalidate_container(using, definition)
    else:
        canonical = (definition.codec.user_key(key) for key in keys)  # None: no row can have it
        invalidate_keys(using, definition, [key for key in canonical if key is not None])
