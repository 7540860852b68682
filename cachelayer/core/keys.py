"""Build every cache key cachelayer uses; nothing else formats a key.

Layout, for prefix ``p``, container ``c`` and user key ``k``::

    p:cfg        configuration version (bumped by admin edits)
    p:g:c        container generation (bumped by a flush)
    p:v:c:k      row version (bumped after every committed write of k)
    p:d:c:k      payload (gen, ver, schema, data)
    p:l:c:k      fill lease
    p:s:c:n      shared statistic ``n`` (a counter, or ``last_flush``)

User keys (and container names) that memcached could not carry raw are
hashed instead of rejected, so any key works on every backend.
"""

from __future__ import annotations

import hashlib
import re

from cachelayer.core.limits import MAX_KEY_LENGTH

HASH_MARK = "#"  # starts every hashed part; raw parts starting with it are hashed too
_UNSAFE = re.compile(r"[^\x21-\x7e]")  # whitespace, control and non-ASCII characters
_HASHED_LENGTH = len(HASH_MARK) + 40


def _hashed(part: str) -> str:
    return HASH_MARK + hashlib.blake2b(part.encode("utf-8"), digest_size=20).hexdigest()


def safe_part(part: str, room: int = MAX_KEY_LENGTH) -> str:
    """Return ``part`` as it may appear in a key, hashing it when it cannot."""
    if _UNSAFE.search(part) or part.startswith(HASH_MARK) or len(part) > room:
        return _hashed(part)
    return part


def config_key(prefix: str) -> str:
    """Return the key of the configuration version."""
    return f"{prefix}:cfg"


class KeySpace:
    """The keys of one container: built once per definition, cheap per call."""

    __slots__ = ("_data_head", "_ver_head", "_lease_head", "_stat_head", "gen", "config", "_room")

    def __init__(self, prefix: str, container_name: str):
        name = safe_part(container_name, room=64)
        self.gen = f"{prefix}:g:{name}"
        self.config = config_key(prefix)
        self._data_head = f"{prefix}:d:{name}:"
        self._ver_head = f"{prefix}:v:{name}:"
        self._lease_head = f"{prefix}:l:{name}:"
        self._stat_head = f"{prefix}:s:{name}:"
        self._room = MAX_KEY_LENGTH - len(self._data_head)
        if self._room < _HASHED_LENGTH:
            raise ValueError(f"KEY_PREFIX {prefix!r} is too long for memcached keys")

    def part(self, user_key: str) -> str:
        """Return the user key as it appears inside this container's keys."""
        return safe_part(user_key, self._room)

    def ver(self, part: str) -> str:
        return self._ver_head + part

    def data(self, part: str) -> str:
        return self._data_head + part

    def lease(self, part: str) -> str:
        return self._lease_head + part

    def stat(self, name: str) -> str:
        return self._stat_head + name
