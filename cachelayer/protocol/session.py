"""Run parsed commands against containers: one Session per client connection.

A session holds the connection's current container (``get @@name`` switches
it, as in the InnoDB plugin; ``@@name<delimiter>key`` addresses one key in
another container) and turns repository results and errors into replies.
With an auth file it first answers nothing but a login (auth.py), then only
what the user and the model allow: a container it may not read does not
exist for it, a write to one it may only read is refused.
Every call runs on a database worker thread (worker.py): it may touch the database.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from typing import Any

from django.db import DatabaseError

from cachelayer.core import logfields
from cachelayer.core.keys import split_container_key
from cachelayer.core.policies import touches_database
from cachelayer.core.sensitivity import NONE, READ, WRITE
from cachelayer.engine import stats as container_stats
from cachelayer.engine.definitions import Definition
from cachelayer.engine.registry import resolve
from cachelayer.exceptions import (
    AccessDenied,
    CachelayerError,
    ContainerNotFound,
    MappingError,
    NotNumeric,
    ValueTooLarge,
)
from cachelayer.protocol import auth, parser
from cachelayer.protocol.flushes import DelayedFlushes
from cachelayer.repositories import Repository
from cachelayer.tasks.follow import progress as follower_progress

logger = logging.getLogger("cachelayer")

VERSION = b"VERSION 1.6.0-cachelayer\r\n"  # numeric first: libmemcached parses it

STORE_REPLIES = {True: parser.STORED, False: parser.NOT_STORED}
CAS_REPLIES = {True: parser.STORED, False: parser.EXISTS, None: parser.NOT_FOUND}
NON_NUMERIC = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"


class ServerStats:
    """Server-wide counters for ``stats`` (memcached's names)."""

    def __init__(self):
        self.started = time.time()
        self.counts: Counter = Counter()
        self._lock = threading.Lock()  # worker threads count concurrently

    def incr(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[name] += amount

    def general(self) -> dict:
        now = time.time()
        return {
            "pid": os.getpid(),
            "uptime": int(now - self.started),
            "time": int(now),
            "version": VERSION.split()[1].decode(),
            "threads": threading.active_count(),
            **{
                name: self.counts[name]
                for name in (
                    "curr_connections",
                    "total_connections",
                    "rejected_connections",
                    "cmd_get",
                    "cmd_set",
                    "cmd_flush",
                    "cmd_touch",
                    "get_hits",
                    "get_misses",
                    "delete_hits",
                    "delete_misses",
                    "incr_hits",
                    "incr_misses",
                    "decr_hits",
                    "decr_misses",
                    "cas_hits",
                    "cas_misses",
                    "cas_badval",
                    "touch_hits",
                    "touch_misses",
                    "auth_cmds",
                    "auth_errors",
                )
            },
        }


class Session:
    """The state of one client connection and the handler of each command."""

    def __init__(
        self,
        server_stats: ServerStats,
        batch,
        flushes: DelayedFlushes,
        credentials: auth.Credentials | None = None,
    ):
        self.server_stats = server_stats
        self.batch = batch
        self.flushes = flushes
        self.container: str | None = None  # None = the default container
        self.credentials = credentials
        self.user: str | None = None  # the username it logged in with
        self.authenticated = credentials is None

    def execute(self, command: parser.Command, data: bytes | None = None) -> bytes:
        """Return the reply to one command (an error reply rather than an exception)."""
        if not self.authenticated:
            return self._login(command, data)
        try:
            return getattr(self, f"_{command.name}")(command, data)
        except NotNumeric:
            return NON_NUMERIC
        except ValueTooLarge:  # a cache_only payload over the cache's item limit
            return parser.TOO_LARGE
        except (ContainerNotFound, MappingError, AccessDenied) as exc:
            return parser.client_error(str(exc))
        except (CachelayerError, DatabaseError) as exc:
            return parser.server_error(str(exc))
        except Exception as exc:  # a bug must cost one reply, not the connection
            logger.exception(
                "cachelayer: cache_serve failed on %r",
                command,
                extra=logfields.fields(container=self.container, keys=command.keys, error=exc),
            )
            return parser.server_error(f"{type(exc).__name__}: {exc}")

    def _login(self, command: parser.Command, data: bytes | None) -> bytes:
        """Answer a client that has not logged in; counted as memcached counts them."""
        assert self.credentials is not None  # only a session with credentials is not authenticated
        reply, self.user = auth.login(self.credentials, command, data)
        self.authenticated = self.user is not None
        if command.name == "set":
            self.server_stats.incr("auth_cmds")
            self.server_stats.incr("auth_errors", not self.authenticated)
        return reply

    # --- addressing ------------------------------------------------------
    def access(self, definition: Definition) -> str:
        """Return what this client may do to a container: NONE, READ or WRITE."""
        if not self.authenticated or not definition.exposed:
            return NONE
        return auth.weakest(definition.protocol_access, auth.access(self.user, definition.name))

    def _definition(self, name: str | None, need: str = READ) -> Definition:
        definition = resolve(name)
        granted = self.access(definition)
        if granted == NONE:
            raise ContainerNotFound(f"container {definition.name!r} is not exposed")
        if need == WRITE and granted != WRITE:
            raise AccessDenied(f"container {definition.name!r} is read-only for this client")
        return definition

    def _address(self, key: str, need: str = READ) -> tuple[Definition, str | None]:
        """Return the container and the user key of a protocol key (key None: ``@@name`` alone)."""
        parsed = split_container_key(key, resolve(None).delimiter)
        if parsed is None:
            return self._definition(self.container, need), key
        name, user_key = parsed
        return self._definition(name, need), user_key

    def _target(self, key: str) -> tuple[Definition, Repository, str]:
        definition, user_key = self._address(key, WRITE)
        if user_key is None:
            raise ContainerNotFound(f"{key!r} names a container, not a key")
        return definition, Repository(definition.name), user_key

    def _write(self, key: str, call):
        """Run ``call(repository, user_key)`` as one write of the connection's batch."""
        definition, repository, user_key = self._target(key)
        return self.batch.write(definition.db_alias(), lambda: call(repository, user_key))

    def _count(self, operation: str, hit: bool) -> None:
        self.server_stats.incr(f"{operation}_{'hits' if hit else 'misses'}")

    # --- retrieval -------------------------------------------------------
    def _get(self, command, data, with_cas: bool = False) -> bytes:
        found: dict[int, tuple[int, str, int]] = {}  # position -> (flags, text, cas)
        wanted: dict[str, list[tuple[int, str]]] = {}  # container -> [(position, user key)]
        for position, key in enumerate(command.keys):
            try:
                definition, user_key = self._address(key)
            except ContainerNotFound:
                continue  # unknown or unexposed containers hold nothing
            if user_key is None:
                self.container = definition.name
                found[position] = (0, definition.model._meta.db_table, 0)
            else:
                wanted.setdefault(definition.name, []).append((position, user_key))
        for name, keys in wanted.items():
            items = Repository(name).get_items(user_key for _, user_key in keys)
            for position, user_key in keys:
                item = items.get(user_key)
                if item is not None:
                    found[position] = (item.flags, item.value, item.cas)
        self.server_stats.incr("cmd_get", len(command.keys))
        self.server_stats.incr("get_hits", len(found))
        self.server_stats.incr("get_misses", len(command.keys) - len(found))
        return (
            b"".join(
                parser.value(key, found[i][0], found[i][1].encode("utf-8"), found[i][2] if with_cas else None)
                for i, key in enumerate(command.keys)
                if i in found
            )
            + parser.END
        )

    def _gets(self, command, data) -> bytes:
        return self._get(command, data, with_cas=True)

    # --- storage ---------------------------------------------------------
    def _store(self, command, data: bytes, call) -> Any:
        self.server_stats.incr("cmd_set")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise MappingError("the value is not UTF-8 text") from None
        return self._write(command.key, lambda repository, key: call(repository, key, text))

    def _set(self, command, data) -> bytes:
        return STORE_REPLIES[
            self._store(
                command,
                data,
                lambda repository, key, text: getattr(repository, command.name)(
                    key, text, flags=command.flags, exptime=command.exptime
                ),
            )
        ]

    _add = _replace = _set

    def _append(self, command, data) -> bytes:
        return STORE_REPLIES[
            self._store(command, data, lambda repository, key, text: getattr(repository, command.name)(key, text))
        ]

    _prepend = _append

    def _cas(self, command, data) -> bytes:
        result = self._store(
            command,
            data,
            lambda repository, key, text: repository.cas(
                key, text, command.cas, flags=command.flags, exptime=command.exptime
            ),
        )
        self.server_stats.incr({True: "cas_hits", False: "cas_badval", None: "cas_misses"}[result])
        return CAS_REPLIES[result]

    def _incr(self, command, data) -> bytes:
        number = self._write(command.key, lambda repository, key: getattr(repository, command.name)(key, command.delta))
        self._count(command.name, number is not None)
        return parser.NOT_FOUND if number is None else b"%d\r\n" % number

    _decr = _incr

    def _touch(self, command, data) -> bytes:
        self.server_stats.incr("cmd_touch")
        touched = self._write(command.key, lambda repository, key: repository.touch(key, command.exptime))
        self._count("touch", touched)
        return parser.TOUCHED if touched else parser.NOT_FOUND

    def _delete(self, command, data) -> bytes:
        deleted = self._write(command.key, lambda repository, key: repository.delete(key))
        self._count("delete", deleted)
        return parser.DELETED if deleted else parser.NOT_FOUND

    def _flush_all(self, command, data) -> bytes:
        """Flush the current container now, or after ``delay`` seconds; either replaces
        a pending delayed flush of it, as memcached's single flush time does."""
        self.server_stats.incr("cmd_flush")
        definition = self._definition(self.container, WRITE)
        if definition.sensitive and touches_database(definition.policies["flush_policy"]):
            raise AccessDenied(
                f"container {definition.name!r} holds credentials: flush_all never deletes its rows "
                "(give it a cache_only flush policy)"
            )
        if not command.delay:
            self.flushes.cancel(definition.name)
            self.batch.write(definition.db_alias(), Repository(definition.name).flush)
            return parser.OK
        definition.policy("flush")  # refuse a disabled flush now, not when it is due
        self.flushes.schedule(definition.name, command.delay)
        return parser.OK

    # --- the rest --------------------------------------------------------
    def _stats(self, command, data) -> bytes:
        if not command.args:
            return parser.stats(self.server_stats.general())
        if command.args == ("containers",):
            return parser.stats(
                {
                    **{
                        f"{name}:{counter}": value
                        for name, counters in sorted(container_stats.snapshot().items())
                        if self._reachable(name)
                        for counter, value in counters.items()
                    },
                    **follower_progress.counters(),  # the binlog followers' events/s and lag
                }
            )
        return parser.ERROR

    def _reachable(self, name: str) -> bool:
        """Return whether clients may address container ``name`` (stats show no other)."""
        try:
            self._definition(name)
        except ContainerNotFound:
            return False
        return True

    def _version(self, command, data) -> bytes:
        return VERSION

    def _verbosity(self, command, data) -> bytes:
        return parser.OK
