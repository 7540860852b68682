"""Build every cache key cachelayer uses; nothing else formats a key.

Layout, for prefix ``p``, container ``c`` and user key ``k``::

    p:cfg        configuration version (bumped by admin edits)
    p:srv        identity of the server process that holds this server's counters
    p:n          pub/sub channel (Redis): the names of the counters each write bumps
    p:g:c        container generation (bumped by a flush)
    p:v:c:k      row version (bumped after every committed write of k)
    p:d:c:k      payload (gen, ver, schema, data)
    p:l:c:k      fill lease
    p:s:c:n      shared statistic ``n`` (a counter, or ``last_flush``)
    p:m:c:n      slot ``n`` of the ring of sampled writes (the freshness monitor's)

User keys (and container names) that memcached could not carry raw are
hashed instead of rejected, so any key works on every backend.

The user key of a multi-column container joins its parts with the
``separator`` option; ``join_parts``/``split_parts`` escape what a part
holds of it, so that every row has a key of its own and every key reads back.
"""

from __future__ import annotations

import hashlib
import re

from cachelayer.core.limits import MAX_KEY_LENGTH

HASH_MARK = "#"  # starts every hashed part; raw parts starting with it are hashed too
_UNSAFE = re.compile(r"[^\x21-\x7e]")  # whitespace, control and non-ASCII characters
_HASHED_LENGTH = len(HASH_MARK) + 40
ESCAPE = "\\"  # in a multi-column key part, goes before the escape itself and the separator's first character
ALTERNATE_ESCAPE = "/"  # the escape when the separator starts with a backslash


def _hashed(part: str) -> str:
    return HASH_MARK + hashlib.blake2b(part.encode("utf-8"), digest_size=20).hexdigest()


def safe_part(part: str, room: int = MAX_KEY_LENGTH) -> str:
    """Return ``part`` as it may appear in a key, hashing it when it cannot."""
    if _UNSAFE.search(part) or part.startswith(HASH_MARK) or len(part) > room:
        return _hashed(part)
    return part


def _escape_of(separator: str) -> str:
    return ALTERNATE_ESCAPE if separator[0] == ESCAPE else ESCAPE


def join_parts(parts, separator: str) -> str:
    """Return the user key of a multi-column key from its parts (strings).

    Escapes, in each part, the escape character and the separator's first
    character, so that ``split_parts`` finds exactly these parts again. A part
    holding neither is joined as it is: such keys look as they always did.
    """
    escape, lead = _escape_of(separator), separator[0]
    return separator.join(
        part.replace(escape, escape + escape).replace(lead, escape + lead) if escape in part or lead in part else part
        for part in parts
    )


def split_parts(user_key: str, separator: str) -> list[str] | None:
    """Return the parts of a key ``join_parts`` built; None when it cannot have built it."""
    escape = _escape_of(separator)
    if escape not in user_key:
        return user_key.split(separator)  # no part had anything escaped
    lead, parts, part, i = separator[0], [], [], 0
    while i < len(user_key):
        char = user_key[i]
        if char == escape:
            following = user_key[i + 1 : i + 2]
            if following not in (escape, lead):
                return None  # nothing else is ever escaped
            part.append(following)
            i += 2
        elif user_key.startswith(separator, i):
            parts.append("".join(part))
            part = []
            i += len(separator)
        else:
            part.append(char)
            i += 1
    parts.append("".join(part))
    return parts


def config_key(prefix: str) -> str:
    """Return the key of the configuration version."""
    return f"{prefix}:cfg"


def near_channel(prefix: str) -> str:
    """Return the pub/sub channel counter bumps are published on (near-caches listen)."""
    return f"{prefix}:n"


def server_key(prefix: str) -> str:
    """Return the key that records which server process the counters on a server belong to."""
    return f"{prefix}:srv"


class KeySpace:
    """The keys of one container: built once per definition, cheap per call."""

    __slots__ = ("_data_head", "_lease_head", "_room", "_sample_head", "_stat_head", "_ver_head", "config", "gen")

    def __init__(self, prefix: str, container_name: str):
        name = safe_part(container_name, room=64)
        self.gen = f"{prefix}:g:{name}"
        self.config = config_key(prefix)
        self._data_head = f"{prefix}:d:{name}:"
        self._ver_head = f"{prefix}:v:{name}:"
        self._lease_head = f"{prefix}:l:{name}:"
        self._stat_head = f"{prefix}:s:{name}:"
        self._sample_head = f"{prefix}:m:{name}:"
        self._room = MAX_KEY_LENGTH - len(self._data_head)
        if self._room < _HASHED_LENGTH:
            raise ValueError(f"KEY_PREFIX {prefix!r} is too long for memcached keys")

    def part(self, user_key: str) -> str:
        """Return the user key as it appears inside this container's keys."""
        if user_key.isalnum() and user_key.isascii() and len(user_key) <= self._room:
            return user_key  # the common case (numbers, codes), safe as it is: no regex
        return safe_part(user_key, self._room)

    def ver(self, part: str) -> str:
        return self._ver_head + part

    def data(self, part: str) -> str:
        return self._data_head + part

    def lease(self, part: str) -> str:
        return self._lease_head + part

    def stat(self, name: str) -> str:
        return self._stat_head + name

    def sample(self, slot: int) -> str:
        return f"{self._sample_head}{slot}"


CONTAINER_MARK = "@@"  # starts a key that names its container, as the InnoDB plugin's @@name.key


def split_container_key(text: str, delimiter: str) -> tuple[str, str | None] | None:
    """Return ``(container, key)`` of ``@@container<delimiter>key`` (key None for
    ``@@container`` alone), or None when ``text`` names no container."""
    if not text.startswith(CONTAINER_MARK):
        return None
    name, found, key = text[len(CONTAINER_MARK) :].partition(delimiter)
    return name, (key if found else None)
