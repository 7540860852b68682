"""Cache policies: the four values and which one governs each operation.

Mirrors innodb_memcache.cache_policies. Pure: no database, no cache.
"""

from __future__ import annotations

from django.db import models


class Policy(models.TextChoices):
    DB_ONLY = "db_only", "db_only (the database is the store)"
    CACHE_ONLY = "cache_only", "cache_only (the cache is the store)"
    CACHING = "caching", "caching (database, read through the cache)"
    DISABLED = "disabled", "disabled (refused)"


# The members under module names, for the read path: reading a member off its enum
# class costs ~0.4 us on Python 3.11 (the enum's descriptor), and every read compares a few.
CACHING, CACHE_ONLY, DB_ONLY, DISABLED = Policy.CACHING, Policy.CACHE_ONLY, Policy.DB_ONLY, Policy.DISABLED

ALIASES = {"innodb_only": Policy.DB_ONLY}  # the InnoDB plugin's spelling

# Which CachePolicy field governs each repository operation.
POLICY_FIELD = {
    "get": "get_policy",
    "set": "set_policy",
    "add": "set_policy",
    "replace": "set_policy",
    "append": "set_policy",
    "prepend": "set_policy",
    "incr": "set_policy",
    "decr": "set_policy",
    "cas": "set_policy",
    "touch": "set_policy",
    "delete": "delete_policy",
    "flush": "flush_policy",
}

DEFAULTS = {
    "get_policy": Policy.CACHING,
    "set_policy": Policy.CACHING,
    "delete_policy": Policy.CACHING,
    "flush_policy": Policy.CACHE_ONLY,  # truncating a table must be asked for
}


def of(policy) -> dict[str, str]:
    """Return the four policies of a CachePolicy row, or the defaults for None (a container with none)."""
    return {name: getattr(policy, name) if policy is not None else default for name, default in DEFAULTS.items()}


def normalize(value: str) -> str:
    """Return the canonical policy value for ``value`` (accepting innodb_only)."""
    value = ALIASES.get(value, value)
    if value not in Policy.values:
        raise ValueError(f"unknown cache policy {value!r}; use one of {', '.join(Policy.values)}")
    return value


def touches_database(policy: str) -> bool:
    return policy in (Policy.DB_ONLY, Policy.CACHING)
