"""The freshness monitor's rolling window: per container, the share of consistent checks at each delay.

Checks are counted in ``BUCKETS`` buckets of ``MONITOR_WINDOW / BUCKETS``
seconds each; the oldest falls out as a new one starts, so the published
share covers the last window and the buckets, one point each, draw the
chart over time (the admin's stats page). What ``summary()`` returns is what
``stats.note_freshness`` stores and every reader (admin, cache_stats,
Prometheus, cache_health) gets back.
"""

from __future__ import annotations

from collections import deque
from fractions import Fraction

from cachelayer.tasks.inspection import EXAMPLES, nines

BUCKETS = 60  # points of the chart over one window


class Window:
    """Checks of one container: consistent / checked per delay, over the last ``seconds``."""

    def __init__(self, delays: list[float], seconds: float, now: float):
        self.delays = delays
        self.seconds = seconds
        self.width = seconds / BUCKETS
        # [start, {delay: [checked, consistent]}, skipped]
        self.buckets: deque[list] = deque(maxlen=BUCKETS)
        self.stale: deque[dict] = deque(maxlen=EXAMPLES)  # the latest wrong answers, for the operator
        self._bucket(now)

    def _bucket(self, now: float) -> list:
        if not self.buckets or now >= self.buckets[-1][0] + self.width:
            self.buckets.append([now, {delay: [0, 0] for delay in self.delays}, 0])
        return self.buckets[-1]

    def add(self, delay: float, key: str, wrong: str | None, now: float) -> None:
        """Count one check of ``key`` made ``delay`` s after its write (``wrong``: its verdict, or None)."""
        counts = self._bucket(now)[1][delay]
        counts[0] += 1
        if wrong is None:
            counts[1] += 1
        else:
            self.stale.append({"key": key, "delay": delay, "verdict": wrong, "at": now})

    def skip(self, count: int, now: float) -> None:
        """Count checks not made: over MONITOR_QUERIES_PER_SECOND, too many pending, or the cache unreadable."""
        self._bucket(now)[2] += count

    def summary(self, now: float) -> dict:
        """Return the window as JSON can carry it."""
        live = [bucket for bucket in self.buckets if bucket[0] > now - self.seconds]
        delays = []
        for delay in self.delays:
            checked = sum(bucket[1][delay][0] for bucket in live)
            consistent = sum(bucket[1][delay][1] for bucket in live)
            delays.append(
                {
                    "delay": delay,
                    "checked": checked,
                    "consistent": consistent,
                    "ratio": consistent / checked if checked else None,
                    "nines": nines(Fraction(consistent, checked)) if checked else "-",
                }
            )
        history = [
            {"at": start, "ratios": [counts[d][1] / counts[d][0] if counts[d][0] else None for d in self.delays]}
            for start, counts, _ in live
        ]
        return {
            "updated": now,
            "window": self.seconds,
            "delays": delays,
            "skipped": sum(bucket[2] for bucket in live),
            "stale": list(self.stale),
            "history": history,
        }


def below_target(summary: dict, targets: dict) -> list[str]:
    """Return, for each delay whose share is under its target in ``targets``, what is wrong."""
    wanted = {float(delay): share for delay, share in targets.items()}
    return [
        f"{entry['nines']} of {entry['checked']} checks consistent within {entry['delay']:g} s "
        f"(target {wanted[entry['delay']]:.3%})"
        for entry in summary["delays"]
        if entry["delay"] in wanted and entry["ratio"] is not None and entry["ratio"] < wanted[entry["delay"]]
    ]
