"""cache_serve authentication and access, in memcached's own convention.

memcached 1.5.15+ started with ``-Y <authfile>`` reads ``username:password``
lines; a client authenticates with any ``set`` whose data is
``<username> <password>`` and gets ``STORED``; until then every command gets
``CLIENT_ERROR unauthenticated`` (proto_text.c). cache_serve does the same,
so every memcached client that speaks it (pymemcache, libmemcached,
spymemcached) can log in. What a logged-in user may then do is
``PROTOCOL_ACCESS`` (per user and container: read or write), capped by
what the model allows (core/sensitivity.py). Without an auth file nobody
logs in, which is allowed on a loopback address only.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket

from cachelayer.core import conf
from cachelayer.core.sensitivity import NONE, READ, WRITE
from cachelayer.exceptions import ServeConfigurationError

UNAUTHENTICATED = b"CLIENT_ERROR unauthenticated\r\n"
AUTH_FAILURE = b"CLIENT_ERROR authentication failure\r\n"
BAD_TOKEN = b"CLIENT_ERROR bad authentication token format\r\n"
AUTHENTICATED = b"STORED\r\n"
ORDER = (NONE, READ, WRITE)  # weakest first


class Credentials:
    """The ``username:password`` entries of one auth file."""

    def __init__(self, entries: list[tuple[bytes, bytes]]):
        self.entries = entries

    @classmethod
    def load(cls, path: str) -> Credentials:
        """Read an auth file as memcached does: the username ends at the first ':'."""
        try:
            with open(path, "rb") as file:
                lines = [line.rstrip(b"\r\n") for line in file]
        except OSError as exc:
            raise ServeConfigurationError(f"cannot read the auth file {path!r}: {exc.strerror}") from None
        entries = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            username, colon, password = line.partition(b":")
            if not colon or not username:
                raise ServeConfigurationError(f"{path}:{number}: expected username:password")
            entries.append((username, password))
        if not entries:
            raise ServeConfigurationError(f"the auth file {path!r} holds no username:password line")
        return cls(entries)

    def check(self, username: bytes, password: bytes) -> bool:
        """Return whether the pair is an entry, comparing every entry in constant time."""
        found = False
        for known_user, known_password in self.entries:
            user_matches = hmac.compare_digest(username, known_user)
            password_matches = hmac.compare_digest(password, known_password)
            found |= user_matches and password_matches
        return found


def credentials(path: str | None = None) -> Credentials | None:
    """Return the credentials of ``path`` (default: PROTOCOL_AUTH_FILE), or None for no authentication."""
    path = path or conf.get("PROTOCOL_AUTH_FILE")
    return Credentials.load(path) if path else None


def login(credentials: Credentials, command, data: bytes | None) -> tuple[bytes, str | None]:
    """Return the reply to a command of a client not logged in, and its username once it logs in."""
    if command.name != "set":
        return UNAUTHENTICATED, None
    assert data is not None  # a set always carries its data block (Command.has_data)
    token = data.split()
    if len(token) < 2:
        return BAD_TOKEN, None
    if not credentials.check(token[0], token[1]):
        return AUTH_FAILURE, None
    return AUTHENTICATED, token[0].decode("utf-8", "replace")


def access(username: str | None, container: str) -> str:
    """Return what ``username`` may do to ``container``: a user PROTOCOL_ACCESS does not name may do anything."""
    rules = conf.get("PROTOCOL_ACCESS")
    if username not in rules:
        return WRITE
    granted = rules[username]
    return granted.get(container, granted.get("*", NONE))


def weakest(*levels: str) -> str:
    """Return the least of NONE, READ and WRITE (what the user and the model both allow)."""
    return min(levels, key=ORDER.index)


def check_bind(host: str, credentials: Credentials | None) -> None:
    """Refuse to listen beyond loopback without authentication."""
    if credentials is None and not is_loopback(host):
        raise ServeConfigurationError(
            f"cache_serve will not listen on {host!r} without authentication: anyone who reaches that "
            "address could read and write every exposed container. Give --auth-file PATH (memcached's -Y "
            "format, one username:password line per user) or set CACHELAYER['PROTOCOL_AUTH_FILE'], or "
            "listen on 127.0.0.1."
        )


def is_loopback(host: str) -> bool:
    """Return whether every address ``host`` names is a loopback address ('' and 0.0.0.0 are not)."""
    if not host:
        return False
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except socket.gaierror:
        return False
    return bool(addresses) and all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses)  # type: ignore[union-attr]  # typeshed: an AF_INET/AF_INET6 sockaddr's host is a str
