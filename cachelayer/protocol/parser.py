"""Read memcached text-protocol command lines and build replies; pure (no I/O).

Replies, limits and error strings follow memcached's doc/protocol.txt (and
memcached 1.6's proto_text.c where the document is silent), so that any
memcached client, libmemcached's tools included, can talk to cache_serve.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from cachelayer.core.limits import MAX_KEY_LENGTH, UINT64

UINT32 = 2**32  # client flags are 32-bit unsigned

STORED = b"STORED\r\n"
NOT_STORED = b"NOT_STORED\r\n"
EXISTS = b"EXISTS\r\n"
NOT_FOUND = b"NOT_FOUND\r\n"
DELETED = b"DELETED\r\n"
TOUCHED = b"TOUCHED\r\n"
END = b"END\r\n"
OK = b"OK\r\n"
ERROR = b"ERROR\r\n"
BAD_FORMAT = b"CLIENT_ERROR bad command line format\r\n"
BAD_CHUNK = b"CLIENT_ERROR bad data chunk\r\n"
BAD_DELTA = b"CLIENT_ERROR invalid numeric delta argument\r\n"
LINE_TOO_LONG = b"CLIENT_ERROR line too long\r\n"
TOO_LARGE = b"SERVER_ERROR object too large for cache\r\n"
TOO_MANY_CONNECTIONS = b"ERROR Too many open connections\r\n"
BAD_DELETE = b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"

BINARY_REQUEST = 0x80  # the first byte of every binary-protocol request (protocol_binary.h)
BINARY_HEADER = struct.Struct(">BBHBBHIIQ")  # magic, opcode, key length, extras, type, status, body, opaque, cas
BINARY_RESPONSE = 0x81
BINARY_UNKNOWN_COMMAND = 0x81  # PROTOCOL_BINARY_RESPONSE_UNKNOWN_COMMAND
ASCII_ONLY = b"cache_serve speaks the ASCII protocol only"

STORAGE = ("set", "add", "replace", "append", "prepend")
RETRIEVAL = ("get", "gets")

# Command -> the fields after its name, in order. "*" = one or more keys;
# "?" marks the fields a command may omit. noreply may follow where
# NOREPLY says so.
GRAMMAR = {
    **dict.fromkeys(STORAGE, ("key", "flags", "exptime", "length")),
    "cas": ("key", "flags", "exptime", "length", "cas"),
    **dict.fromkeys(RETRIEVAL, ("*",)),
    "delete": ("key", "?hold"),
    "incr": ("key", "delta"),
    "decr": ("key", "delta"),
    "touch": ("key", "exptime"),
    "flush_all": ("?delay",),
    "verbosity": ("?level",),
    "stats": ("?args",),
    "version": ("?args",),  # memcached ignores what follows version and quit
    "quit": ("?args",),
}
NOREPLY = {*STORAGE, "cas", "delete", "incr", "decr", "touch", "flush_all", "verbosity"}


class ProtocolError(Exception):
    """A command line the protocol rejects; ``reply`` is what the client gets."""

    def __init__(self, reply: bytes):
        super().__init__(reply.decode().strip())
        self.reply = reply


@dataclass(frozen=True)
class Command:
    name: str
    keys: tuple[str, ...] = ()
    flags: int = 0
    exptime: int = 0
    length: int = 0  # bytes of the data block that follows a storage command
    cas: int = 0
    delta: int = 0
    delay: int = 0
    level: int = 0
    args: tuple[str, ...] = ()
    noreply: bool = False

    @property
    def key(self) -> str:
        return self.keys[0]

    @property
    def has_data(self) -> bool:
        return self.name in STORAGE or self.name == "cas"


def _number(token: bytes, low: int, high: int, error: bytes = BAD_FORMAT) -> int:
    if b"_" in token:  # int() takes 1_000; memcached's strtoull does not
        raise ProtocolError(error)
    try:
        value = int(token.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError(error) from None
    if not low <= value < high:
        raise ProtocolError(error)
    return value


def _key(token: bytes) -> str:
    """Return a key as text; too long, control characters or not UTF-8 are refused."""
    if len(token) > MAX_KEY_LENGTH or any(byte < 0x21 or byte == 0x7F for byte in token):
        raise ProtocolError(BAD_FORMAT)
    try:
        return token.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(BAD_FORMAT) from None


FIELDS = {  # field -> (Command attribute, parse one token)
    "flags": ("flags", lambda t: _number(t, 0, UINT32)),
    "exptime": ("exptime", lambda t: _number(t, -UINT32, UINT32)),
    "length": ("length", lambda t: _number(t, 0, 2**31)),
    "cas": ("cas", lambda t: _number(t, 0, UINT64)),
    "delta": ("delta", lambda t: _number(t, 0, UINT64, BAD_DELTA)),
    "delay": ("delay", lambda t: _number(t, 0, UINT32)),
    "level": ("level", lambda t: int(t) if t.isdigit() else 0),  # memcached reads it with strtoul
}


def parse(line: bytes) -> Command:
    """Parse one command line (with or without its line ending)."""
    tokens = [token for token in line.rstrip(b"\r\n").split(b" ") if token]
    if not tokens:
        raise ProtocolError(ERROR)
    name = tokens[0].decode("ascii", "replace")
    fields = GRAMMAR.get(name)
    if fields is None:
        raise ProtocolError(ERROR)
    words = tokens[1:]
    noreply = name in NOREPLY and bool(words) and words[-1] == b"noreply" and len(words) > _required(fields)
    if noreply:
        words = words[:-1]
    if name == "verbosity" and not tokens[1:]:
        raise ProtocolError(ERROR)  # the level may be left out only before noreply
    if fields == ("*",):
        if not words:
            raise ProtocolError(ERROR)
        return Command(name, keys=tuple(_key(word) for word in words))
    if fields == ("?args",):
        return Command(name, args=tuple(word.decode("utf-8", "replace") for word in words))
    if name == "delete":
        return _delete(words, noreply)
    # memcached answers a wrong token count with ERROR, and ignores one
    # extra token that is not noreply.
    if not _required(fields) <= len(words) <= len(fields) + (name in NOREPLY):
        raise ProtocolError(ERROR)
    values: dict[str, Any] = {"noreply": noreply}
    for field, word in zip(fields, words):
        field = field.lstrip("?")
        if field == "key":
            values["keys"] = (_key(word),)
        else:
            attribute, convert = FIELDS[field]
            values[attribute] = convert(word)
    return Command(name, **values)


def _required(fields) -> int:
    return sum(1 for field in fields if not field.startswith("?"))


def _delete(words, noreply: bool) -> Command:
    """``delete <key> [0] [noreply]``: memcached still accepts a zero hold time."""
    if not words:
        raise ProtocolError(ERROR)
    if len(words) > 2 or (len(words) == 2 and words[1] != b"0"):
        raise ProtocolError(BAD_DELETE)
    return Command("delete", keys=(_key(words[0]),), noreply=noreply)


def value(key: str, flags: int, data: bytes, cas: int | None = None) -> bytes:
    """Return one ``VALUE`` block of a get (``cas`` for gets)."""
    header = f"VALUE {key} {flags} {len(data)}" + ("" if cas is None else f" {cas}")
    return header.encode("utf-8") + b"\r\n" + data + b"\r\n"


def binary_refusal(header: bytes) -> bytes:
    """Return the binary-protocol "unknown command" response to a request ``header``.

    A binary client then reports an error instead of waiting for a reply that
    an ASCII server would never send; the stream cannot be resynchronised after it.
    """
    opcode, opaque = header[1], BINARY_HEADER.unpack(header)[7]
    return (
        BINARY_HEADER.pack(BINARY_RESPONSE, opcode, 0, 0, 0, BINARY_UNKNOWN_COMMAND, len(ASCII_ONLY), opaque, 0)
        + ASCII_ONLY
    )


def stats(values: dict) -> bytes:
    """Return ``STAT name value`` lines and the closing END."""
    return b"".join(f"STAT {name} {stat}\r\n".encode() for name, stat in values.items()) + END


def client_error(message: str) -> bytes:
    return b"CLIENT_ERROR " + _one_line(message) + b"\r\n"


def server_error(message: str) -> bytes:
    return b"SERVER_ERROR " + _one_line(message) + b"\r\n"


def _one_line(message: str) -> bytes:
    return " ".join(str(message).split()).encode("utf-8", "replace")
