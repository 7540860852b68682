"""System checks of the freshness monitor's settings (``MONITOR_*``).

cachelayer.E002  a MONITOR_* value has the wrong type or range
cachelayer.E005  MONITOR_TARGETS names a delay MONITOR_DELAYS does not measure

A bad value would otherwise surface late and far from its cause: a negative
sample rate samples nothing without a word, a delay given twice counts its
checks twice, a target at a delay the monitor never checks is never met nor
missed, and a string where a number belongs fails inside cache_monitor or
cache_health.
"""

from __future__ import annotations

import math
from itertools import pairwise

from django.core.checks import Error

DELAYS_EXAMPLE = "e.g. [1.0, 5.0, 60.0]"


def _number(value) -> bool:
    """Return whether ``value`` is a finite real number (a bool is not one)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _error(name: str, message: str, hint: str, value) -> Error:
    return Error(f"CACHELAYER[{name!r}] = {value!r}: {message}", hint=hint, id="cachelayer.E002")


def errors(value: dict) -> list[Error]:
    """Return what is wrong with the MONITOR_* settings of ``value`` (the effective CACHELAYER dict)."""
    found = []
    rate = value["MONITOR_SAMPLE_RATE"]
    if not _number(rate) or not 0 <= rate <= 1:
        found.append(
            _error(
                "MONITOR_SAMPLE_RATE",
                "must be a number from 0 to 1 (the share of invalidated keys sampled).",
                "0 turns sampling off; 0.01 samples one key in a hundred.",
                rate,
            )
        )
    delays = value["MONITOR_DELAYS"]
    good_delays = isinstance(delays, (list, tuple)) and bool(delays) and all(_number(d) and d > 0 for d in delays)
    if not good_delays:
        found.append(
            _error(
                "MONITOR_DELAYS",
                "must be a non-empty list of positive numbers (seconds after a sampled write).",
                f"{DELAYS_EXAMPLE}: one check of each sampled write per delay.",
                delays,
            )
        )
    elif any(later <= earlier for earlier, later in pairwise(delays)):
        found.append(
            _error(
                "MONITOR_DELAYS",
                "must be increasing, each delay once (a delay given twice would count its checks twice).",
                f"List them from the shortest to the longest, {DELAYS_EXAMPLE}.",
                delays,
            )
        )
    for name, meaning, hint in (
        ("MONITOR_QUERIES_PER_SECOND", "the monitor's query budget", "e.g. 10.0; checks past it are skipped, counted."),
        ("MONITOR_WINDOW", "seconds of checks the published share covers", "e.g. 3600.0 (an hour)."),
    ):
        if not _number(value[name]) or value[name] <= 0:
            found.append(_error(name, f"must be a positive number ({meaning}).", hint, value[name]))
    found += _target_errors(value["MONITOR_TARGETS"], delays if good_delays else None)
    return found


def _target_errors(targets, delays) -> list[Error]:
    """Check MONITOR_TARGETS' shape, and that each of its delays is measured (``delays``: None when not known)."""
    shape = isinstance(targets, dict) and all(
        _number(delay) and delay > 0 and _number(share) and 0 < share <= 1 for delay, share in targets.items()
    )
    if not shape:
        return [
            _error(
                "MONITOR_TARGETS",
                "must map delays (seconds, positive numbers) to shares above 0 and at most 1.",
                "e.g. {5.0: 0.999, 60.0: 0.999}: 99.9% of checks consistent within 5 s and within 60 s.",
                targets,
            )
        ]
    if delays is None:
        return []
    measured = {float(delay) for delay in delays}
    return [
        Error(
            f"CACHELAYER['MONITOR_TARGETS'] sets a target at {delay!r} s, a delay MONITOR_DELAYS "
            f"{list(delays)!r} does not measure: cache_health could never compare it.",
            hint="Set targets only at delays listed in MONITOR_DELAYS, or add the delay there "
            "(the default targets are at 5 and 60 s).",
            id="cachelayer.E005",
        )
        for delay in targets
        if float(delay) not in measured
    ]
