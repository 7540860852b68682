"""The structured fields every cachelayer log record carries (``extra``).

Log pipelines group records by what they are about, not by their text: each
record has the attributes ``container``, ``cache`` (the CACHES alias),
``server`` and ``keys`` (None where unknown, or where the record is about
more than one), so a JSON formatter or ``%(container)s`` in a format string
works on every record cachelayer emits.
"""

from __future__ import annotations

from collections.abc import Iterable

KEYS_LOGGED = 20  # keys one record names at most (a bulk write may touch thousands)


def fields(
    container: str | None = None,
    server: str | None = None,
    keys: Iterable | None = None,
    cache: str | None = None,
    error: BaseException | None = None,
) -> dict:
    """Return the ``extra`` of a log record about ``container``, ``server`` and ``keys``.

    ``error``, a ``CacheUnavailable`` the adapters raised, tells the cache and
    server it came from where the caller does not know them.
    """
    named: list[str] | None = None
    if keys is not None:
        named = []
        for key in keys:
            if len(named) == KEYS_LOGGED:
                break
            named.append(str(key))
    return {
        "container": container,
        "cache": cache if cache is not None else getattr(error, "cache", None),
        "server": server if server is not None else getattr(error, "server", None),
        "keys": named,
    }
