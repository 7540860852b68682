"""What the freshness monitor costs the hot paths when it is off: now against before it landed.

The monitor's only hook on a hot path is in the delivery of invalidations
(engine/samples.py: with ``MONITOR_SAMPLE_RATE`` 0, one settings look-up); a
hit does not reach it at all. This bench measures, as ratios to a raw
``cache.get`` timed in the same process and the same rounds:

- ``pk hit``: ``Item.cached.get(pk)``, the hit path;
- ``invalidate 1 key``: ``cachelayer.invalidate(Item, [pk])`` outside
  ``atomic``, the delivery every write makes;

in three trees and settings: ``before`` (the tree before the monitor's merge,
exported with ``git archive``), ``now, monitor off`` (this tree, the default
``MONITOR_SAMPLE_RATE`` 0) and ``now, rate 1.0`` (every key sampled: one more
round trip per delivery). Each runs in a process of its own; the processes
take turns, ``--turns`` times each, and the table shows the median ratio of
CPU time per call (CPU time moves less than wall time when other jobs share
the cores) with the median wall ratio beside it. The cache is the test
settings' ``memcached`` alias (``--cache`` names another); the database a
throw-away SQLite file per process. Run from the repository:

    .venv/bin/python bench/monitor_overhead.py [--before REV] [--turns 3] [--cache memcached]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "05623bb^"  # main just before "Merge monitor: cache_monitor, the continuous freshness monitor"
ROUNDS, OPS, WARMUP = 21, 1000, 2000
RAW = "raw cache.get"
TREES = ("before", "now, monitor off", "now, rate 1.0")


def _per_call(call) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(OPS):
        call()
    return (time.perf_counter() - wall) / OPS * 1e6, (time.process_time() - cpu) / OPS * 1e6


def _ratios(raw, timed: dict) -> dict:
    """Time ``raw`` and each of ``timed`` in alternating rounds; return ``{name: [wall us, cpu us]}``."""
    for _ in range(WARMUP):
        raw()
        for call in timed.values():
            call()
    samples: dict[str, list] = {RAW: [], **{name: [] for name in timed}}
    for _ in range(ROUNDS):
        samples[RAW].append(_per_call(raw))
        for name, call in timed.items():
            samples[name].append(_per_call(call))
    return {name: [statistics.median(s[i] for s in values) for i in (0, 1)] for name, values in samples.items()}


def child(cache_alias: str, monitor_rate: float | None) -> None:
    """Measure in this process's tree; print ``{op: [wall us, cpu us]}`` as JSON."""
    import django

    django.setup()
    from django.core.cache import caches
    from django.core.management import call_command
    from django.test import override_settings

    import cachelayer
    from tests.testapp.models import Item

    call_command("migrate", run_syncdb=True, verbosity=0)  # the test app has no migrations
    item = Item.objects.create(value=17, text="user17@example.com")
    cache = caches[cache_alias]
    raw_key = f"raw-{uuid.uuid4().hex}"
    cache.set(raw_key, Item.objects.filter(pk=item.pk).values_list().get())
    overrides = {"CACHE_ALIAS": cache_alias, "KEY_PREFIX": f"mo{uuid.uuid4().hex[:10]}"}
    if monitor_rate is not None:
        overrides["MONITOR_SAMPLE_RATE"] = monitor_rate
    with override_settings(CACHELAYER=overrides):
        Item.cached.get(item.pk)  # loads the definitions and fills
        result = _ratios(
            lambda: cache.get(raw_key),
            {
                "pk hit": lambda: Item.cached.get(item.pk),
                "invalidate 1 key": lambda: cachelayer.invalidate(Item, [item.pk]),
            },
        )
    print(json.dumps(result))


def _export(revision: str, into: Path) -> None:
    """Write the package, the tests and the demo project of ``revision`` into ``into``."""
    archive = subprocess.run(
        ["git", "archive", revision, "cachelayer", "tests", "demo_project"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def _run(tree: Path, cache_alias: str, rate: float | None, scratch: Path) -> dict:
    database = scratch / f"bench-{uuid.uuid4().hex[:8]}.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(tree),
        "PYTHONDONTWRITEBYTECODE": "1",
        "CACHELAYER_DB": f"sqlite:///{database}",
    }
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", "--cache", cache_alias]
    if rate is not None:
        argv += ["--rate", str(rate)]
    done = subprocess.run(argv, env=env, cwd=tree, capture_output=True, text=True)
    database.unlink(missing_ok=True)
    if done.returncode:
        raise SystemExit(f"the {tree} process failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, help=f"the tree to compare with (default {BEFORE})")
    parser.add_argument("--turns", type=int, default=3, help="processes per tree, taking turns (default 3)")
    parser.add_argument(
        "--cache", default="memcached", help="the CACHES alias of the test settings (default memcached)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.cache, args.rate)
        return
    with tempfile.TemporaryDirectory(prefix="monitor-overhead-") as scratch:
        old = Path(scratch) / "before"
        old.mkdir()
        _export(args.before, old)
        runs = {"before": (old, None), "now, monitor off": (ROOT, None), "now, rate 1.0": (ROOT, 1.0)}
        measured: dict[str, list[dict]] = {tree: [] for tree in TREES}
        for turn in range(args.turns):
            order = TREES[turn % 3 :] + TREES[: turn % 3]  # the order rotates each turn
            for tree in order:
                tree_root, rate = runs[tree]
                measured[tree].append(_run(tree_root, args.cache, rate, Path(scratch)))
    print(f"cache {args.cache!r}; before = {args.before}; {args.turns} processes per tree, {ROUNDS} rounds of {OPS}")
    print(f"{'operation':18} " + " ".join(f"{tree:>24}" for tree in TREES))
    for op in ("pk hit", "invalidate 1 key"):
        cells = []
        for tree in TREES:
            cpu = statistics.median(run[op][1] / run[RAW][1] for run in measured[tree])
            wall = statistics.median(run[op][0] / run[RAW][0] for run in measured[tree])
            cells.append(f"{cpu:6.2f}x cpu ({wall:5.2f}x wall)")
        print(f"{op:18} " + " ".join(f"{cell:>24}" for cell in cells))
    raw = {tree: statistics.median(run[RAW][1] for run in measured[tree]) for tree in TREES}
    print(f"{RAW:18} " + " ".join(f"{raw[tree]:19.1f} us cpu" for tree in TREES))


if __name__ == "__main__":
    main()
