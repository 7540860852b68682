"""Record cachelayer's reads and invalidations while a block of code runs.

The debug toolbar panel and the demo's country page both ask "what did the
cache layer do for this request?". Receivers of ``cache_hit``, ``cache_miss``
and ``cache_invalidated`` are connected only while at least one recording is
open somewhere in the process, so that ordinary requests keep the read path's
"no receivers, no signal" shortcut. Each event goes to the recordings of the
current context only (a ContextVar), so concurrent requests in other threads
or asyncio tasks never see each other's events. The cache round trips are
counted the same way (adapters/trips.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass

from cachelayer import signals
from cachelayer.adapters.trips import RoundTrips
from cachelayer.core.contextstack import ContextStack

HIT, MISS, INVALIDATED = "hit", "miss", "invalidated"

_open = ContextStack("cachelayer_recordings")
_lock = threading.Lock()
_listeners = 0  # recordings open in the whole process


@dataclass(frozen=True)
class Event:
    kind: str  # HIT, MISS or INVALIDATED
    model: str  # "app_label.ModelName"
    container: str
    keys: tuple[str, ...] | None  # None: the whole container was outdated
    at_ms: float  # since the recording started

    def as_dict(self) -> dict:
        return {**asdict(self), "keys": None if self.keys is None else list(self.keys)}


class Recording:
    """The events and cache round trips seen between ``start()`` and ``stop()``;
    also a context manager."""

    def __init__(self):
        self.events: list[Event] = []
        self.started = 0.0
        self.trips = RoundTrips()
        self._token = None

    @property
    def round_trips(self) -> int:
        return self.trips.count

    def count(self, kind: str) -> int:
        """Return the number of keys read (HIT, MISS) or invalidation events (INVALIDATED)."""
        return sum(1 for event in self.events if event.kind == kind)

    def start(self) -> Recording:
        self.started = time.perf_counter()
        self._token = _open.push(self)
        self.trips.start()
        _listen(+1)
        return self

    def stop(self) -> None:
        if self._token is None:
            return
        _listen(-1)
        self.trips.stop()
        _open.pop(self, self._token)
        self._token = None

    def __enter__(self) -> Recording:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _add(self, kind: str, sender, container: str, keys) -> None:
        at = (time.perf_counter() - self.started) * 1000
        self.events.append(Event(kind, sender._meta.label, container, keys, round(at, 3)))


def _receive(kind: str):
    def receiver(sender, container, **kwargs):
        recordings = _open.get()
        if recordings:
            keys = (kwargs["key"],) if "key" in kwargs else kwargs.get("keys")
            keys = None if keys is None else tuple(str(key) for key in keys)
            for recording in recordings:
                recording._add(kind, sender, container, keys)

    return receiver


_RECEIVERS = [  # (signal, receiver, dispatch_uid)
    (signals.cache_hit, _receive(HIT), "cachelayer.recording.hit"),
    (signals.cache_miss, _receive(MISS), "cachelayer.recording.miss"),
    (signals.cache_invalidated, _receive(INVALIDATED), "cachelayer.recording.invalidated"),
]


def _listen(delta: int) -> None:
    """Connect the receivers when the first recording opens, disconnect after the last closes."""
    global _listeners
    with _lock:
        _listeners += delta
        for signal, receiver, uid in _RECEIVERS:
            if _listeners == 1 and delta > 0:
                signal.connect(receiver, weak=False, dispatch_uid=uid)
            elif _listeners == 0:
                signal.disconnect(dispatch_uid=uid)
