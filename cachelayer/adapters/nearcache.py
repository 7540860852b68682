"""The near-cache (L1): rows kept in this process's memory, dropped by push.

An entry is kept under the counter that outdates it (the row version key,
``p:v:c:k``) and its container's generation key. Every counter bump a writer
makes in Redis publishes the counters' names on cachelayer's channel in the
same script (adapters/redis.py), and the writer's own process drops them here
before the write returns; every other process drops them when its subscriber
thread (``Subscriber``) reads the message. The configuration version clears
everything.

Three rules keep an entry from outliving its row:

1. An insert carries a token (``token()``) taken BEFORE the Redis read it
   inserts: a drop of its counter or generation (bucketed: a collision only
   refuses more), or a clear, since that token refuses the insert. The
   classic race (read, the invalidation arrives and is applied, then the old
   value is inserted) therefore cannot leave a stale entry.
2. Nothing is served unless the channel is trusted: the subscriber renews
   the trust each time a PING it sent comes back (Redis answers a
   subscriber in order, so every message published before that PING was
   read first), for MAX_LAG seconds from the PING. A channel that breaks,
   disconnects or stalls lets the trust lapse: L1 is cleared, and nothing
   is inserted until the subscriber has subscribed again (a reconnect clears
   it too: what was published in the gap is lost).
3. Bounded: at most ``max_entries`` entries and ``max_bytes`` (the payload's
   encoded size, plus a fixed overhead), least recently used first out, and
   an entry expires after ``timeout`` seconds at most (a backstop, as TTLs are).

A hit is a dict look-up, a clock read and, for a row holding mutable values,
an unpickle (every caller gets its own copy): no socket is touched.
"""

from __future__ import annotations

import datetime
import decimal
import logging
import os
import pickle
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from typing import Any

logger = logging.getLogger("cachelayer")

BUCKETS = 4096  # drop marks: a power of two (masked), enough that unrelated keys rarely share one
ENTRY_OVERHEAD = 200  # bytes an entry costs besides its payload (key tuple, Entry, index slots)
# Values a row may share between callers (a row holding any other is copied per hit).
IMMUTABLE = (
    int,
    float,
    str,
    bytes,
    bool,
    type(None),
    decimal.Decimal,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    uuid.UUID,
)
RECONNECT_DELAYS = (0.0, 0.05, 0.2, 1.0)  # seconds before each reconnect after a failure (the last repeats)
MISSING = object()  # what get() returns for a key it does not hold


class Entry:
    __slots__ = ("counter", "expires", "frozen", "generation", "key", "owner", "row", "size")

    def __init__(self, key, owner, counter, generation, row, frozen, size, expires):
        self.key, self.owner, self.counter, self.generation = key, owner, counter, generation
        self.row, self.frozen, self.size, self.expires = row, frozen, size, expires


def shareable(row) -> bool:
    """Return whether every caller may get ``row`` itself (no mutable value in it)."""
    if isinstance(row, IMMUTABLE) or type(row) is object:  # a sentinel (the engine's ABSENT) is itself
        return True
    if isinstance(row, tuple):
        return all(isinstance(value, IMMUTABLE) for value in row)
    return False


class NearCache:
    """One process's L1 for one cache: entries, drop marks, trust."""

    def __init__(self, config_key: str, max_entries: int, max_bytes: int, timeout: float, max_lag: float):
        self.config_key = config_key
        self.max_entries, self.max_bytes, self.timeout, self.max_lag = max_entries, max_bytes, timeout, max_lag
        self._lock = threading.Lock()
        self._entries: OrderedDict[Any, Entry] = OrderedDict()
        self._by_counter: dict[str, Any] = {}
        self._by_generation: dict[str, set] = {}
        self._marks = [0] * BUCKETS
        self._events = 0  # drops so far (a token's second half)
        self.epoch = 0  # clears so far (a token's first half)
        self.bytes = 0
        self.trusted_until = 0.0  # monotonic: serve nothing past it
        # hits: approximate under threads (an unlocked +=), the others exact
        self.counts = dict.fromkeys(("hits", "inserts", "refused", "drops", "clears", "evictions"), 0)
        self.subscriber: Subscriber | None = None
        _instances.add(self)

    def __len__(self) -> int:
        return len(self._entries)

    # -- the hit path (no lock, no socket) ---------------------------------

    def get(self, key, owner) -> Any:
        """Return the row kept for ``key`` by ``owner`` (a definition), or MISSING."""
        entry = self._entries.get(key)
        if entry is None or entry.owner is not owner:
            return MISSING
        now = time.monotonic()
        if now >= self.trusted_until:
            self.lapse()
            return MISSING
        if now >= entry.expires:
            return MISSING
        try:
            self._entries.move_to_end(key)  # one C call: atomic under the GIL
        except KeyError:
            pass  # dropped meanwhile: the read began before the drop ended
        self.counts["hits"] += 1
        return entry.row if entry.frozen else pickle.loads(entry.row)

    def serving(self) -> bool:
        """Return whether the channel is trusted now (else L1 is neither read nor filled)."""
        return time.monotonic() < self.trusted_until

    # -- inserts -----------------------------------------------------------

    def token(self) -> tuple[int, int]:
        """Return what an insert must carry: take it before the Redis read whose row it keeps."""
        subscriber = self.subscriber
        if subscriber is not None:
            subscriber.ensure()
        return self.epoch, self._events

    def keep(self, token, key, owner, counter: str, generation: str, row, size: int, timeout: float | None) -> bool:
        """Keep ``row`` unless anything that could outdate it was dropped since ``token``."""
        frozen = shareable(row)
        stored = row if frozen else pickle.dumps(row, pickle.HIGHEST_PROTOCOL)
        size += ENTRY_OVERHEAD
        lifetime = self.timeout if not timeout else min(self.timeout, timeout)
        epoch, events = token
        with self._lock:
            if (
                epoch != self.epoch
                or self._marks[hash(counter) & (BUCKETS - 1)] > events
                or self._marks[hash(generation) & (BUCKETS - 1)] > events
                or time.monotonic() >= self.trusted_until
                or size > self.max_bytes
            ):
                self.counts["refused"] += 1
                return False
            self._remove(key)
            entry = Entry(key, owner, counter, generation, stored, frozen, size, time.monotonic() + lifetime)
            self._entries[key] = entry
            self._by_counter[counter] = key
            self._by_generation.setdefault(generation, set()).add(key)
            self.bytes += size
            self.counts["inserts"] += 1
            while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
                self._remove(next(iter(self._entries)))
                self.counts["evictions"] += 1
        return True

    # -- drops -------------------------------------------------------------

    def drop(self, counters) -> None:
        """Drop what the bumped ``counters`` outdate (row versions, generations, the configuration)."""
        with self._lock:
            self._events += 1
            mark = self._events
            for counter in counters:
                if counter == self.config_key:
                    self._clear()
                    continue
                self._marks[hash(counter) & (BUCKETS - 1)] = mark
                key = self._by_counter.get(counter)
                if key is not None:
                    self._remove(key)
                    self.counts["drops"] += 1
                for key in list(self._by_generation.get(counter, ())):
                    self._remove(key)
                    self.counts["drops"] += 1

    def clear(self) -> None:
        """Drop everything, and refuse every insert whose token came before."""
        with self._lock:
            self._clear()

    def lapse(self) -> None:
        """The channel is not (or no longer) trusted: drop everything."""
        with self._lock:
            self.trusted_until = 0.0
            if self._entries or self.bytes:
                self._clear()

    def trust(self, until: float) -> None:
        self.trusted_until = max(self.trusted_until, until)

    def _clear(self) -> None:
        self.epoch += 1
        self._entries.clear()
        self._by_counter.clear()
        self._by_generation.clear()
        self.bytes = 0
        self.counts["clears"] += 1

    def _remove(self, key) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self.bytes -= entry.size
        if self._by_counter.get(entry.counter) == key:
            del self._by_counter[entry.counter]
        siblings = self._by_generation.get(entry.generation)
        if siblings is not None:
            siblings.discard(key)
            if not siblings:
                del self._by_generation[entry.generation]

    def forked(self) -> None:
        """In a forked child: nothing the parent heard counts, and its thread is not ours."""
        self._lock = threading.Lock()
        self.trusted_until = 0.0
        self._clear()
        if self.subscriber is not None:
            self.subscriber.forked()

    def close(self) -> None:
        if self.subscriber is not None:
            self.subscriber.stop()
        self.lapse()


class Subscriber:
    """The thread that reads cachelayer's channel and keeps a NearCache's trust.

    ``connect`` returns a new, connected redis-py connection (the adapter's
    connection class and options: Sentinel, TLS and ACLs apply). The thread
    sends a PING every quarter of MAX_LAG; each answer renews the trust for
    MAX_LAG from when the PING was sent. Any failure (the connection killed
    or closed, no answer within MAX_LAG, a reply it cannot read) lapses the
    trust and reconnects; a new subscription clears L1 before it is trusted.
    """

    def __init__(self, near: NearCache, connect, channel: str):
        self.near, self.connect, self.channel = near, connect, channel
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.connection: Any = None
        self.subscriptions = 0  # successful subscriptions so far (tests and the benchmark wait on it)
        self.messages = 0

    def ensure(self) -> None:
        """Start the thread if it is not running (first use, or it died)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with self._lock:
            if self._stop.is_set() or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._run, name="cachelayer-l1", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        connection = self.connection
        if connection is not None:
            try:
                connection.disconnect()
            except Exception:
                pass  # closing a socket the thread may be using: best effort

    def forked(self) -> None:
        self._lock = threading.Lock()
        self._thread, self.connection = None, None

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            subscribed = self.subscriptions
            try:
                self._listen()
            except Exception as exc:
                if not self._stop.is_set():  # a burst is logged once, as the breaker does
                    log = logger.warning if failures == 0 or self.subscriptions > subscribed else logger.debug
                    log("cachelayer: near-cache channel %s broke (%r); L1 dropped until it is back", self.channel, exc)
            finally:
                self.near.lapse()
                connection, self.connection = self.connection, None
                if connection is not None:
                    connection.disconnect()
            failures = 1 if self.subscriptions > subscribed else failures + 1  # a new burst starts at once
            self._stop.wait(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS)) - 1])

    def _listen(self) -> None:
        from redis.exceptions import ResponseError  # here: a project without Redis imports this module too

        near, interval = self.near, self.near.max_lag / 4
        connection = self.connection = self.connect()
        connection.send_command("CLIENT", "SETNAME", f"cachelayer-l1-{os.getpid()}-{self.channel}")
        try:
            connection.read_response()
        except ResponseError:
            pass  # an ACL user without CLIENT: the name only helps an operator (and the tests) find it
        connection.send_command("SUBSCRIBE", self.channel)
        sent = time.monotonic()
        reply = connection.read_response(push_request=True)  # RESP3 (redis-py 8's default): a push
        if _kind(reply) != "subscribe":
            raise ConnectionError(f"unexpected answer to SUBSCRIBE: {reply!r}")
        near.clear()  # what was published before the subscription is lost: nothing kept from before counts
        near.trust(sent + near.max_lag)
        self.subscriptions += 1
        pinged: float | None = None
        next_ping = sent + interval
        while not self._stop.is_set():
            now = time.monotonic()
            if pinged is None and now >= next_ping:
                connection.send_command("PING")
                pinged = now
            elif pinged is not None and now - pinged > near.max_lag:
                raise TimeoutError(f"no answer to PING within {near.max_lag} s")
            if not connection.can_read(timeout=interval):
                continue
            reply = connection.read_response(push_request=True)
            kind = _kind(reply)
            if kind == "message":
                near.drop(_text(reply[2]).split(" "))
                self.messages += 1
            elif kind == "pong" and pinged is not None:
                near.trust(pinged + near.max_lag)
                next_ping, pinged = pinged + interval, None


def _kind(reply) -> str:
    """Return what a subscriber's reply is: "message", "subscribe", "pong" (RESP2 or RESP3)..."""
    head = reply[0] if isinstance(reply, list) and reply else reply
    return _text(head).lower() if isinstance(head, (bytes, str)) else ""


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_instances: weakref.WeakSet[NearCache] = weakref.WeakSet()


def _after_fork() -> None:
    for near in list(_instances):
        near.forked()


os.register_at_fork(after_in_child=_after_fork)
