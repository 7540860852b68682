"""Errors cachelayer raises; all derive from CachelayerError."""

from django.db import OperationalError


class CachelayerError(Exception):
    """Base class of every cachelayer error."""


class CacheUnavailable(CachelayerError):
    """The cache did not answer (timeout, refused connection, server error).

    ``cache`` and ``server`` name the CACHES alias and the server that failed,
    where the raiser knows them (log records carry them: core/logfields.py).
    """

    def __init__(self, message: str, cache: str | None = None, server: str | None = None):
        self.cache, self.server = cache, server
        super().__init__(message)


class DatabaseUnavailable(CachelayerError, OperationalError):
    """The database cannot be reached (not: cachelayer's tables are missing).

    An OperationalError too, so code that handles the database's own errors handles it.
    """

    def __init__(self, alias: str, error: Exception):
        self.alias = alias
        super().__init__(f"database {alias!r} cannot be reached: {error}")


class ForgedPayload(CachelayerError):
    """A cached payload failed authentication: forged, moved, or signed with another key (a miss)."""


class ContainerNotFound(CachelayerError, LookupError):
    """No enabled container has that name, or none maps that model."""


class OperationDisabled(CachelayerError):
    """The container's policy is ``disabled`` for this operation."""

    def __init__(self, container: str, operation: str, policy_field: str):
        self.container, self.operation = container, operation
        super().__init__(f"{operation!r} is disabled on container {container!r} ({policy_field} = disabled)")


class MappingError(CachelayerError, ValueError):
    """A container mapping does not fit its model, or a value does not fit it."""


class IndexContainer(MappingError):
    """A key read or a write addressed an index container, whose key maps to a list of rows."""

    def __init__(self, container: str, what: str):
        self.container = container
        super().__init__(f"container {container!r} is an index container (a key maps to a list of rows): {what}")


class NotNumeric(CachelayerError, ValueError):
    """incr/decr met a value that is not a non-negative integer."""

    def __init__(self, container: str, key: str, operation: str):
        super().__init__(f"cannot {operation} {key!r} in container {container!r}: the value is not numeric")


class InvalidDelta(CachelayerError, ValueError):
    """incr/decr was given a delta memcached would refuse (not an integer in 0..2**64-1)."""

    def __init__(self, delta):
        super().__init__(f"invalid numeric delta argument {delta!r}: use an integer from 0 to 2**64-1")


class ValueTooLarge(CachelayerError, ValueError):
    """A cache_only write whose payload is over the cache's item size limit."""

    def __init__(self, container: str, operation: str, key: str, size: int, limit: int):
        super().__init__(
            f"cannot {operation} {key!r} in container {container!r}: {size} bytes is over the cache's limit of {limit}"
        )


class FollowerError(CachelayerError):
    """cache_follow cannot follow this server (a setting or a grant is missing, the server is gone)."""


class AccessDenied(CachelayerError):
    """A cache_serve client may not do this to this container (read-only access, a sensitive model)."""


class ServeConfigurationError(CachelayerError):
    """cache_serve cannot start safely as configured (an unreadable auth file, an open bind without one)."""
