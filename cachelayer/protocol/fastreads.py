"""cache_serve's reads served from the cache on the event loop, batched across clients.

A ``get`` whose keys are all in the cache needs no database: it is answered
on the event loop, with no hop to a database worker thread (about as
long as the read itself). The ``get`` commands of every client that arrive
in the same turn of the loop share one multi-get per container (one round
trip per cache server), sent as the loop's own I/O (adapters/pipeline.py
for memcached, a thread of the loop's executor for the other clients): the
loop never waits for the cache, it reads and parses the next commands while
a multi-get is in flight, and a cache that does not answer within its socket
timeout sends the commands that waited for it to the workers. Whatever may need the database goes to the
database workers as before, the whole command: a miss (row read,
lease, fill), a container not loaded yet, a configuration version this
process has not loaded, a cache server the outbox still owes, a policy that
is not read-through, ``@@`` switching, or a connection whose write batch may
hold writes it must read back (``--batch-size`` over 1). The same versioned
read as everywhere (versions.fetch): a payload counts only at the current
generation, version and schema, and nothing is filled here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from cachelayer.core.keys import CONTAINER_MARK
from cachelayer.core.policies import Policy
from cachelayer.core.sensitivity import NONE
from cachelayer.engine import reads, stats, versions
from cachelayer.engine.registry import registry
from cachelayer.exceptions import ContainerNotFound, OperationDisabled
from cachelayer.protocol import parser
from cachelayer.protocol.session import Session
from cachelayer.repositories import as_item, is_expired

logger = logging.getLogger("cachelayer")

FALL_BACK = None  # the command goes to a database worker


class FastReads:
    """Batch the cache half of concurrent clients' ``get`` commands."""

    def __init__(self):
        self._pending: dict = {}  # definition -> [(user keys, future)] of the next multi-get
        self._reading: dict = {}  # definition -> the task reading its multi-gets, one in flight at a time
        self._publishing: asyncio.Future | None = None  # the statistics publish running on a thread

    async def get(self, session: Session, command: parser.Command, with_cas: bool) -> bytes | None:
        """Return the reply to a ``get``/``gets`` served from the cache, or None (use the worker)."""
        definition = self._definition(session, command.keys)
        if definition is None:
            return FALL_BACK
        future = asyncio.get_running_loop().create_future()
        self._pending.setdefault(definition, []).append((command.keys, future))
        if definition not in self._reading:  # else the next multi-get forms while one is in flight
            self._reading[definition] = asyncio.get_running_loop().create_task(self._read_batches(definition))
        rows = await future
        if rows is None:
            return FALL_BACK
        return _reply(session, definition, command.keys, rows, with_cas)

    def _definition(self, session: Session, keys: Sequence[str]):
        """Return the one container the keys address, when the cache alone may answer."""
        if not registry.loaded or any(key.startswith(CONTAINER_MARK) for key in keys):
            return None
        name = session.container
        try:
            definition = registry.default() if name is None else registry.find(name)
        except ContainerNotFound:
            return None
        if definition is None or not definition.enabled or session.access(definition) == NONE or definition.is_index:
            return None  # (an index's payloads are lists: the worker's repository answers with their pks)
        try:
            if definition.policy("get") not in (Policy.CACHING, Policy.CACHE_ONLY):
                return None  # db_only, or the kill switch is off
        except OperationDisabled:
            return None
        if definition.adapter.dirty_servers() or definition.adapter.topology_due():
            return None  # the outbox replay (and the topology check) read the database
        return definition

    async def _read_batches(self, definition) -> None:
        """Read a container's pending commands, one multi-get at a time, until none waits.

        The task starts on the loop's next turn, so the commands of this turn
        share the first multi-get; those that arrive while it is in flight
        share the next. A container whose cache is slow holds only its own
        commands.
        """
        try:
            while waiting := self._pending.pop(definition, None):
                await self._read(definition, waiting)
        finally:
            del self._reading[definition]

    async def _read(self, definition, waiting: list) -> None:
        """Read the keys of one container's commands and answer each command's future."""
        try:  # keys in the form the database gives them; folding them may need it: then the worker
            canonical = {key: definition.codec.user_key(key, offline=True) for keys, _ in waiting for key in keys}
            if not definition.codec.exact(offline=True):
                raise LookupError("the container's reads go to the database")
            wanted = list(dict.fromkeys(key for key in canonical.values() if key is not None))
            states = (await versions.fetch_async(definition, wanted)).states
        except Exception as exc:
            logger.debug(
                "cachelayer: cache_serve fast read falls back: %r",
                exc,
                extra=definition.log_fields(keys=[key for keys, _ in waiting for key in keys], error=exc),
            )
            canonical, states = {}, None
        cache_only = definition.policies["get_policy"] == Policy.CACHE_ONLY
        for keys, future in waiting:
            if not future.done():
                future.set_result(_rows(definition, keys, canonical, states, cache_only))
        self._publish()

    def _publish(self) -> None:
        """Publish the counts of the loop's reads on a thread when due: a publish is a
        round trip to every counted container's cache (a frozen one would stall the loop)."""
        if stats.publish_due() and (self._publishing is None or self._publishing.done()):
            self._publishing = asyncio.get_running_loop().run_in_executor(None, stats.publish)


def _rows(definition, keys: list[str], canonical: dict, states: dict | None, cache_only: bool) -> dict | None:
    """Return ``{key: row}`` of the keys that exist, or None when one needs the database."""
    if states is None:
        return None
    found, misses, seen = {}, [], {}
    for key in keys:
        user_key = canonical[key]
        if user_key is None:
            continue  # no row can have it
        state = seen[user_key] = states.get(user_key)
        if state is None:
            return None  # its server could not be read
        if state.row is versions.MISSING:
            if not cache_only:
                return None
            misses.append(state)
        elif state.row is not versions.ABSENT:
            found[key] = state.row
    reads.count_reads(definition, seen, misses, publish=False)  # published off the loop (_publish)
    return found


def _reply(session: Session, definition, keys: Sequence[str], rows: dict, with_cas: bool) -> bytes:
    """Render the reply exactly as Session._get does."""
    parts = []
    for key in keys:
        row = rows.get(key)
        if row is None:
            continue
        current = dict(zip(definition.stored, row))
        if is_expired(definition, current):
            continue
        item = as_item(definition, current)
        parts.append(parser.value(key, item.flags, item.value.encode("utf-8"), item.cas if with_cas else None))
    counts = session.server_stats
    counts.incr("cmd_get", len(keys))
    counts.incr("get_hits", len(parts))
    counts.incr("get_misses", len(keys) - len(parts))
    return b"".join(parts) + parser.END
