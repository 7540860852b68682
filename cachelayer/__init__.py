"""cachelayer: a cache-aside data layer for Django models.

Public names are imported lazily (PEP 562) so that importing the package
loads no model and touches no setting.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"  # the one place: pyproject.toml reads it (setuptools dynamic version)

__all__ = [
    "CacheUnavailable",
    "CachedManager",
    "CachedModelMixin",
    "CachedQuerySet",
    "CachelayerError",
    "ContainerNotFound",
    "Item",
    "MappingError",
    "NotNumeric",
    "OperationDisabled",
    "Repository",
    "ValueTooLarge",
    "invalidate",
    "memo",
    "repository",
]

_HOMES = {
    "CachedModelMixin": "cachelayer.mixins",
    "CachedManager": "cachelayer.mixins",
    "CachedQuerySet": "cachelayer.mixins",
    "Repository": "cachelayer.repositories",
    "Item": "cachelayer.repositories",
    "repository": "cachelayer.api",
    "invalidate": "cachelayer.api",
    "memo": "cachelayer.engine.memo",
    "CachelayerError": "cachelayer.exceptions",
    "ContainerNotFound": "cachelayer.exceptions",
    "OperationDisabled": "cachelayer.exceptions",
    "MappingError": "cachelayer.exceptions",
    "NotNumeric": "cachelayer.exceptions",
    "ValueTooLarge": "cachelayer.exceptions",
    "CacheUnavailable": "cachelayer.exceptions",
}


def __getattr__(name):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'cachelayer' has no attribute {name!r}")
