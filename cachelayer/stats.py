"""Per-container counters, kept in process (cheap on the hot path)."""

from __future__ import annotations

from collections import Counter, defaultdict

from cachelayer import conf

COUNTERS = ("hits", "misses", "fills", "invalidations", "lease_waits", "errors", "too_large")

_counts: defaultdict[str, Counter] = defaultdict(Counter)


def incr(container: str, counter: str, amount: int = 1) -> None:
    if conf.get("STATS"):
        _counts[container][counter] += amount


def snapshot() -> dict[str, dict[str, int]]:
    """Return this process's counters by container."""
    return {name: {c: counts[c] for c in COUNTERS} for name, counts in _counts.items()}


def reset() -> None:
    _counts.clear()
