"""The continuous freshness monitor (``manage.py cache_monitor``).

Every ``POLL_INTERVAL`` it reads each container's ring of sampled writes
(engine/samples.py: this project's processes and the follower publish there).
For each new sample it schedules one check per ``MONITOR_DELAYS`` entry,
``delay`` seconds after the write. A check reads the key as the read path
would serve it, without filling anything, and compares it with the database
(``inspection.compare``: a disagreement counts only when a second look
confirms it). Checks that fall due together in one container go in one
batch: one multi-get and one query, two when something disagreed.

Bounded: at most ``MONITOR_QUERIES_PER_SECOND`` queries (a token bucket);
checks past it, past ``PENDING_LIMIT`` waiting, or on a cache that cannot be
read are skipped and counted, never run late (a late check would measure a
longer delay than it reports). Every ``STATS_INTERVAL`` seconds, and when it
stops, it publishes each container's window (tasks/freshness.py).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections import defaultdict

from cachelayer.core import conf, logfields
from cachelayer.engine import samples, stats, versions
from cachelayer.engine.definitions import Definition
from cachelayer.engine.registry import registry
from cachelayer.exceptions import CacheUnavailable
from cachelayer.tasks import inspection
from cachelayer.tasks.freshness import Window

logger = logging.getLogger("cachelayer")

POLL_INTERVAL = 0.2  # s between two reads of the rings: far below the shortest useful delay
PENDING_LIMIT = 100_000  # checks waiting at most; past it new samples are skipped
QUERIES_PER_BATCH = 2  # a batch's rows, and the suspects' rows again


class Monitor:
    """Sample, schedule and check the writes of ``names`` (None: every enabled container)."""

    def __init__(self, names: list[str] | None = None):
        registry.load()
        self.names = names if names is not None else [d.name for d in registry.definitions(enabled=True)]
        self.delays = sorted(float(delay) for delay in conf.get("MONITOR_DELAYS"))
        self.rate = float(conf.get("MONITOR_QUERIES_PER_SECOND"))
        now = self.started = time.time()
        self.windows = {name: Window(self.delays, float(conf.get("MONITOR_WINDOW")), now) for name in self.names}
        self.seen: dict[str, dict[str, str]] = {name: {} for name in self.names}  # slot -> entry already scheduled
        self.pending: list[tuple[float, int, str, float, str]] = []  # (due, n, container, delay, key)
        self._order = itertools.count()
        self.tokens, self._filled = max(self.rate, QUERIES_PER_BATCH), time.monotonic()
        self.published_at = time.monotonic()

    def run(self, duration: float | None = None) -> None:
        """Monitor for ``duration`` seconds (None: until interrupted), then publish."""
        end = None if duration is None else time.monotonic() + duration
        try:
            while end is None or time.monotonic() < end:
                self.step()
                pause = POLL_INTERVAL if end is None else min(POLL_INTERVAL, end - time.monotonic())
                time.sleep(max(pause, 0))
        finally:
            self.publish()

    def step(self) -> None:
        """Read the rings, run the checks now due, publish when STATS_INTERVAL has passed."""
        for name in self.names:
            self._poll(name)
        self._check_due(time.time())
        if time.monotonic() - self.published_at >= conf.get("STATS_INTERVAL"):
            self.publish()

    def publish(self) -> None:
        """Store each container's window where every process reads statistics."""
        self.published_at = time.monotonic()
        now = time.time()
        for name, window in self.windows.items():
            try:
                stats.note_freshness(name, window.summary(now))
            except CacheUnavailable as exc:
                logger.warning(
                    "cachelayer: cache_monitor could not publish the freshness of %s: %s",
                    name,
                    exc,
                    extra=logfields.fields(container=name),
                )

    def _definition(self, name: str) -> Definition | None:
        definition = registry.find(name)
        return definition if definition is not None and definition.enabled else None

    def _poll(self, name: str) -> None:
        definition = self._definition(name)
        if definition is None:
            return
        ring = samples.read(definition)
        if ring is None:
            return  # the cache cannot be read now: samples wait in the ring (or are lost with it)
        seen, now = self.seen[name], time.time()
        for slot, raw in ring.items():
            if seen.get(slot) == raw:
                continue
            seen[slot] = raw
            sample = samples.decode(raw)
            if sample is None or sample.written < self.started:
                continue  # measured from the start on: what was written before is not known in full
            for delay in self.delays:
                due = sample.written + delay
                if due < now:  # too late to measure: the monitor was stalled
                    self.windows[name].skip(1, now)
                    continue
                if len(self.pending) >= PENDING_LIMIT:
                    self.windows[name].skip(1, now)
                    continue
                heapq.heappush(self.pending, (due, next(self._order), name, delay, sample.key))

    def _check_due(self, now: float) -> None:
        due: defaultdict[str, list[tuple[float, str]]] = defaultdict(list)
        while self.pending and self.pending[0][0] <= now:
            _, _, name, delay, key = heapq.heappop(self.pending)
            due[name].append((delay, key))
        for name, checks in due.items():
            for start in range(0, len(checks), inspection.CHUNK_SIZE):
                self._check(name, checks[start : start + inspection.CHUNK_SIZE], now)

    def _check(self, name: str, checks: list[tuple[float, str]], now: float) -> None:
        window, definition = self.windows[name], self._definition(name)
        if definition is None or inspection.skip_reason(definition) or not self._spend():
            window.skip(len(checks), now)
            return
        keys = list(dict.fromkeys(key for _, key in checks))
        try:
            try:
                wrong = inspection.compare(definition, keys)[1]
            except versions.Restart:  # the configuration changed: once more with the new definition
                definition = registry.get(name)
                wrong = inspection.compare(definition, keys)[1]
        except (CacheUnavailable, versions.Restart) as exc:
            window.skip(len(checks), now)
            logger.debug(
                "cachelayer: cache_monitor skipped %d checks of %s: %s",
                len(checks),
                name,
                exc,
                extra=logfields.fields(container=name, keys=keys),
            )
            return
        for delay, key in checks:
            window.add(delay, key, wrong.get(key), now)
        if wrong:
            logger.warning(
                "cachelayer: cache_monitor: %s serves %d key(s) the database contradicts: %s",
                name,
                len(wrong),
                ", ".join(sorted(wrong)[:10]),
                extra=logfields.fields(container=name, server=None, keys=sorted(wrong)),
            )

    def _spend(self) -> bool:
        """Take one batch's queries from the budget; False when it is spent for now."""
        clock = time.monotonic()
        ceiling = max(self.rate, QUERIES_PER_BATCH)
        self.tokens = min(ceiling, self.tokens + (clock - self._filled) * self.rate)
        self._filled = clock
        if self.tokens < QUERIES_PER_BATCH:
            return False
        self.tokens -= QUERIES_PER_BATCH
        return True
