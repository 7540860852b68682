"""The follower's loop: deliver what the stream decoded, store the position, recover.

The same loop serves every source (source.py): the binlog and the WAL.

Invalidations go through ``invalidation.deliver`` / ``deliver_generation``,
exactly as after an in-process commit (what the cache does not take waits in
the outbox), and only then does the position move. Whatever stops the
follower (SIGKILL included), it resumes from the stored position: at least
once. It starts the stream again from the last delivered position when the
server goes away (with backoff, a bounded number of times), when container
definitions reload (the admin edited one) and after DDL on a watched table.
A source whose log must be told what was delivered (a replication slot) hears
it only after the delivery (``Stream.confirm``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict
from typing import cast

from cachelayer.engine import invalidation, versions
from cachelayer.engine.registry import registry
from cachelayer.exceptions import CacheUnavailable, FollowerError
from cachelayer.tasks.follow.position import Position
from cachelayer.tasks.follow.progress import Progress
from cachelayer.tasks.follow.sources import open_source
from cachelayer.tasks.follow.stream import End, Failed, Stream, Transaction
from cachelayer.tasks.follow.tables import Tables

IDLE_WAIT = 0.2  # seconds without a transaction after which the position is written
CONFIG_INTERVAL = 1.0  # seconds between two looks at the configuration version
BATCH_LIMIT = 5000  # transactions merged into one delivery
RECONNECT_ATTEMPTS = 40  # consecutive failed attempts before giving up (about 3 minutes)
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0  # seconds before the first retry, and at most
RELOAD = object()  # the stream must start again with a new Tables snapshot


class Follower:
    """Follow the log of DATABASES[alias] (binlog or WAL) and invalidate every changed row's keys."""

    def __init__(
        self,
        alias: str = "default",
        server_id: int | None = None,
        *,
        once: bool = False,
        from_start: bool = False,
        freeze_schema: bool = True,
        report=None,
        slot: str | None = None,
    ):
        self.alias, self.once, self.from_start = alias, once, from_start
        self.source = open_source(alias, server_id=server_id, freeze=freeze_schema, slot=slot)
        self.progress = Progress(alias, self.source.server_id)
        self.report = report or (lambda message: None)
        self.stopping = threading.Event()
        self.totals: defaultdict[str, int] = defaultdict(int)  # transactions, rows, keys, generations
        self.tables: Tables | None = None
        self.delivered: Position | None = None
        self._changed = False  # a delivery since the last stored position outdated something
        self._progressed = False
        self._seen: set[str] = set()
        self._followed: list = []  # the definitions the current Tables snapshot was built from
        self._followed_load = 0  # registry.loads then
        self._next_config = 0.0

    # --- the loop ---------------------------------------------------------
    def run(self) -> Position:
        """Follow until stopped (or, with ``once``, until the end of the log); return the position."""
        self.source.preflight()
        for note in self.source.notes():
            self.report(note)
        registry.load()
        self._seen = {definition.name for definition in registry.definitions()}
        self._config_changed()  # registers the configuration version seen now (no stream to restart yet)
        self.tables = self._build_tables()
        self.delivered = self._start()
        self.progress.save(self.delivered)
        failures = 0
        try:
            while not self.stopping.is_set():
                outcome = self._follow_once()
                if isinstance(outcome, End):
                    if self.once or self.stopping.is_set():
                        break
                    outcome = Failed(
                        ConnectionError("the server ended the stream (another replica with this server id?)")
                    )
                if isinstance(outcome, Failed):
                    failures = 1 if self._progressed else failures + 1
                    self._progressed = False
                    self._recover(outcome.error, failures)
                else:
                    failures = 0
            self.progress.save(self.delivered, final=True)
        finally:
            self.source.close()
        return self.delivered

    def summary(self) -> str:
        """Return one line saying where the follower stopped and what it did."""
        totals = self.totals
        return (
            f"{self.alias}: at {self.delivered} ({totals['transactions']} transactions, {totals['rows']} row events, "
            f"{totals['keys']} keys, {totals['generations']} generation bumps)"
        )

    def _follow_once(self):
        """Start a stream from the delivered position and consume it; return End, Failed or RELOAD."""
        try:
            if self.tables is None:
                self.tables = self._build_tables()
            assert self.delivered is not None  # run() set it before the loop
            stream = self.source.stream(self.delivered, self.tables, blocking=not self.once).start()
        except self.source.errors as exc:
            return Failed(exc)
        try:
            outcome = self._consume(stream)
        finally:
            stream.stop()
        if outcome is RELOAD:
            self.tables = None
        return outcome

    def _consume(self, stream: Stream):
        while not self.stopping.is_set():
            try:
                batch = [stream.queue.get(timeout=IDLE_WAIT)]
            except queue.Empty:
                self._save(idle=True)
                if self._config_changed():
                    return RELOAD
                continue
            while len(batch) < BATCH_LIMIT and isinstance(batch[-1], Transaction):
                try:
                    batch.append(stream.queue.get_nowait())
                except queue.Empty:
                    break
            done = [item for item in batch if isinstance(item, Transaction)]
            if done:
                self._deliver(done)
                stream.confirm(cast(Position, self.delivered))
            if not isinstance(batch[-1], Transaction):
                self._save(idle=True)
                return batch[-1]
            if any(item.changes.reload for item in done):
                return RELOAD  # a watched table changed shape: new snapshot, fresh table map
            self._save(idle=False)
            if self._config_changed():
                return RELOAD
        return End()

    # --- delivery ---------------------------------------------------------
    def _deliver(self, transactions: list[Transaction]) -> None:
        """Outdate what ``transactions`` changed: one delivery for all of them."""
        keys, generations, rows = defaultdict(set), set(), 0
        for transaction in transactions:
            changes = transaction.changes
            for definition, changed in changes.keys.items():
                keys[definition].update(changed)
            generations.update(changes.generations)
            rows += changes.rows
        owed = {definition: changed for definition, changed in keys.items() if definition not in generations}
        if owed or generations:
            invalidation.deliver(
                invalidation.Changes(
                    keys=defaultdict(set, {definition.name: changed for definition, changed in owed.items()}),
                    containers={definition.name for definition in generations},
                )
            )
        self.delivered = transactions[-1].end
        self._changed = self._changed or bool(owed or generations)
        self.progress.events += rows
        self._progressed = True
        for name, count in (
            ("transactions", len(transactions)),
            ("rows", rows),
            ("generations", len(generations)),
            ("keys", sum(len(changed) for changed in owed.values())),
        ):
            self.totals[name] += count

    def _bump_all(self) -> None:
        for definition in cast(Tables, self.tables).definitions:
            invalidation.deliver_generation(definition, None)
        self.totals["generations"] += len(cast(Tables, self.tables).definitions)

    def _save(self, idle: bool) -> None:
        assert self.delivered is not None  # run() set it before the loop
        if self.progress.due(self._changed, idle) and self.progress.save(self.delivered):
            self._changed = False

    # --- where to start, and recovery -------------------------------------
    def _start(self) -> Position:
        """Return the stored position, or the current end after bumping every generation."""
        stored = self.progress.load()
        if self.from_start:
            return self.source.oldest()
        current = self.source.current()  # read before the bump: every later write is in the stream
        if stored is None:
            self._bump_all()
            assert self.tables is not None  # run() built them before _start()
            self.report(
                f"no stored position for {self.alias!r}: bumped {len(self.tables.definitions)} "
                f"container generation(s) and starting at {current}"
            )
            return current
        why = self.source.unresumable(stored)
        if why:
            self._lost(stored, current, why)
            return current
        return stored

    def _lost(self, stored: Position, current: Position, why: str) -> None:
        self._bump_all()
        message = (
            f"the stored position {stored} {why}: bumped the generation of all "
            f"{len(cast(Tables, self.tables).definitions)} container(s) and continuing at {current}"
        )
        self.progress.fail(message, log=False)
        self.report(message)

    def _recover(self, error: Exception, failures: int) -> None:
        """Handle a stream failure: raise when hopeless, else wait and let the loop reconnect."""
        fatal = self.source.fatal(error)
        if fatal is not None:
            raise fatal from None
        if self.source.position_lost(error):
            try:
                current = self.source.current()
            except self.source.errors as exc:
                error = exc
            else:
                assert self.delivered is not None  # run() set it before the loop
                self._lost(self.delivered, current, f"is no longer in the log of {self.source.name} (purged?)")
                self.delivered = current
                return
        message = f"{type(error).__name__}: {error} (attempt {failures} of {RECONNECT_ATTEMPTS})"
        self.progress.fail(message)
        if failures >= RECONNECT_ATTEMPTS:
            raise FollowerError(f"gave up following {self.source.name} after {failures} attempts: {error}")
        self.stopping.wait(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1)))

    def _build_tables(self) -> Tables:
        self._followed = registry.definitions()
        self._followed_load = registry.loads
        tables = Tables.build(self.source, registry)
        self.source.verify(tables)
        return tables

    def _config_changed(self) -> bool:
        """Return True when container definitions reloaded (an admin edit); bump new containers."""
        now = time.monotonic()
        if now < self._next_config:
            return False
        self._next_config = now + CONFIG_INTERVAL
        try:
            probes = {definition.cache_alias: definition for definition in self._followed}
            for definition in probes.values():
                versions.revalidate(definition)
            if not probes:
                registry.load()
        except CacheUnavailable:
            return False
        if registry.loads == self._followed_load:  # (a delivery may have reloaded them too)
            return False
        current = {definition.name: definition for definition in registry.definitions()}
        added = set(current) - self._seen
        self._seen = set(current)
        # Writes to a new container's table were skipped until now: outdate whatever it cached meanwhile.
        for name in sorted(added):
            invalidation.deliver_generation(current[name], None)
        return True
