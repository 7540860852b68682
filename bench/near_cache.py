"""The near-cache (L1): its hit against a raw ``cache.get``, and how soon another
process drops an invalidated row.

One parent process and one reader process, the test settings' Redis and a
throw-away SQLite file. Hits: the p50 of single-call timings (perf_counter_ns,
SAMPLES calls each, interleaved in rounds) of Django's raw ``cache.get`` of one
key on Redis (django-redis), ``Item.cached.get(pk)`` answered by Redis (L1 off),
by L1, and the bare ``NearCache.get`` under it. Invalidation delay: the reader
keeps the row in its L1; the parent invalidates it (``cachelayer.invalidate``:
one round trip that bumps the version and publishes); the delay runs from just
before that round trip to the moment the reader's subscriber thread dropped
the row (no later read can return it), measured on the one monotonic clock
the host's processes share. Two readers: an idle one (its main thread waits,
as a worker between requests), and a busy one (its main thread spins on L1
reads, holding the GIL the subscriber thread needs). Run from the repository:

    DJANGO_SETTINGS_MODULE=tests.settings PYTHONPATH=$PWD CACHELAYER_DB=sqlite:////tmp/near_cache.sqlite3 \\
        .venv/bin/python bench/near_cache.py [--writes 300] [--switch-interval 0.001]

``--switch-interval`` adds a third reader: a busy one whose process set
``sys.setswitchinterval`` (CPython's default is 5 ms, the busy reader's floor).

It writes bench-output/near_cache.json (``--out``); ``bash bench/run.sh`` runs it on its private
Redis and keeps the figures in results.json under "near_cache".
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import django

SAMPLES, ROUNDS = 2000, 10
ROOT = Path(__file__).resolve().parents[1]


def settings_for(prefix: str, near: bool) -> dict:
    return {"CACHE_ALIAS": "redis", "KEY_PREFIX": prefix, "NEAR_CACHE": near, "STATS": False}


def percentile(values, share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def timings(call) -> list[int]:
    clock, out = time.perf_counter_ns, []
    for _ in range(SAMPLES):
        started = clock()
        call()
        out.append(clock() - started)
    return out


def hits(item, prefix: str) -> dict:
    from django.core.cache import caches
    from django.test import override_settings

    from cachelayer.adapters.registry import get_adapter
    from cachelayer.engine.registry import registry
    from tests.testapp.models import Item

    cache = caches["redis"]
    raw_key = f"raw-{uuid.uuid4().hex}"
    cache.set(raw_key, Item.objects.filter(pk=item.pk).values_list().get())
    calls = {"raw cache.get": lambda: cache.get(raw_key)}
    samples: dict[str, list[int]] = {}
    for near in (False, True):
        with override_settings(CACHELAYER=settings_for(f"{prefix}{int(near)}", near)):
            Item.cached.get(item.pk)
            if near:
                adapter = get_adapter("redis")
                deadline = time.monotonic() + 10
                while not (adapter.near.serving() and len(adapter.near)) and time.monotonic() < deadline:
                    Item.cached.get(item.pk)
                key, definition = ("testapp_item", str(item.pk)), registry.for_cached_model(Item)
                assert adapter.near.get(key, definition) is not near_missing(), "the row never entered L1"
                names = {
                    "Item.cached.get, L1 hit": lambda: Item.cached.get(item.pk),
                    "NearCache.get alone": lambda near=adapter.near, key=key, owner=definition: near.get(key, owner),
                }
            else:
                names = {"Item.cached.get, Redis hit": lambda: Item.cached.get(item.pk)}
            for _ in range(ROUNDS):
                for name, call in {**calls, **names}.items():
                    samples.setdefault(name, []).extend(timings(call))
    raw = statistics.median(samples["raw cache.get"])
    result = {}
    for name, values in samples.items():
        p50 = statistics.median(values) / 1000
        result[name] = {
            "p50_us": round(p50, 3),
            "p99_us": round(percentile(values, 0.99) / 1000, 3),
            "ratio_to_raw": round(p50 * 1000 / raw, 4),
        }
    return result


def delays(item, prefix: str, writes: int, busy: bool, switch_interval: float | None = None) -> dict:
    """Spawn a reader; invalidate the row ``writes`` times; return the delay percentiles (us)."""
    from django.test import override_settings

    import cachelayer
    from cachelayer.adapters.registry import get_adapter

    cachelayer_settings = settings_for(prefix, True)
    env = {**os.environ, "CACHELAYER_JSON": json.dumps(cachelayer_settings)}
    reader = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--reader",
            str(item.pk),
            "--busy" if busy else "--idle",
            *(["--switch-interval", str(switch_interval)] if switch_interval else []),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    found = []
    with override_settings(CACHELAYER=cachelayer_settings):
        adapter = get_adapter("redis")
        real, started = adapter.invalidate, []

        def timed(*args, **kwargs):
            started.append(time.monotonic_ns())
            return real(*args, **kwargs)

        adapter.invalidate = timed
        try:
            for _ in range(writes):
                assert reader.stdout.readline().strip() == "ready"
                started.clear()
                cachelayer.invalidate(type(item), [item.pk])
                dropped = int(reader.stdout.readline())
                found.append((dropped - started[0]) / 1000)
        finally:
            del adapter.invalidate
            reader.kill()  # it is waiting for the next invalidation
            reader.wait(timeout=30)
    return {
        "writes": len(found),
        "p50_us": round(percentile(found, 0.5), 1),
        "p99_us": round(percentile(found, 0.99), 1),
        "max_us": round(max(found), 1),
    }


def reader_main(pk: int, busy: bool) -> None:
    """The reader process: keep the row in L1, report when each invalidation dropped it."""
    from django.test import override_settings

    from cachelayer.adapters.registry import get_adapter
    from cachelayer.engine.registry import registry
    from tests.testapp.models import Item

    with override_settings(CACHELAYER=json.loads(os.environ["CACHELAYER_JSON"])):
        Item.cached.get(pk)
        near = get_adapter("redis").near
        definition = registry.for_cached_model(Item)
        key, dropped, at = ("testapp_item", str(pk)), threading.Event(), []
        real_drop = near.drop

        def drop(counters):
            real_drop(counters)
            if not dropped.is_set():
                at.append(time.monotonic_ns())
                dropped.set()

        near.drop = drop
        while True:
            while near.get(key, definition) is near_missing():
                Item.cached.get(pk)
                time.sleep(0.001)
            dropped.clear()
            at.clear()
            print("ready", flush=True)
            if busy:
                while not dropped.is_set():
                    near.get(key, definition)
            else:
                dropped.wait()
            print(at[0], flush=True)


def near_missing():
    from cachelayer.adapters.nearcache import MISSING

    return MISSING


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--out", default=str(ROOT / "bench-output" / "near_cache.json"))
    parser.add_argument("--reader", type=int)
    parser.add_argument("--busy", action="store_true")
    parser.add_argument("--idle", action="store_true")
    parser.add_argument("--switch-interval", type=float, help="the readers' sys.setswitchinterval (s)")
    options = parser.parse_args()
    django.setup()
    if options.reader is not None:
        if options.switch_interval:
            sys.setswitchinterval(options.switch_interval)
        reader_main(options.reader, options.busy)
        return
    from django.core.management import call_command

    from tests.testapp.models import Item

    call_command("migrate", run_syncdb=True, verbosity=0)
    item = Item.objects.create(value=1, text="user1@example.com")
    prefix = f"b{uuid.uuid4().hex[:10]}"
    try:
        result = {
            "hits": hits(item, prefix),
            "invalidation_delay_idle_reader": delays(item, prefix + "i", options.writes, busy=False),
            "invalidation_delay_busy_reader": delays(item, prefix + "b", options.writes, busy=True),
        }
        if options.switch_interval:
            result["invalidation_delay_busy_reader_switch_interval"] = {
                "switch_interval_s": options.switch_interval,
                **delays(item, prefix + "s", options.writes, busy=True, switch_interval=options.switch_interval),
            }
    finally:
        item.delete()
    out = Path(options.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    for name, figures in result["hits"].items():
        print(
            f"{name:28} p50 {figures['p50_us']:8.2f} us  p99 {figures['p99_us']:8.2f} us  "
            f"({figures['ratio_to_raw']:.3f}x raw cache.get)"
        )
    for name in [key for key in result if key.startswith("invalidation_delay")]:
        figures = result[name]
        print(
            f"{name:32} p50 {figures['p50_us']:8.1f} us  p99 {figures['p99_us']:8.1f} us  max {figures['max_us']:8.1f} us"
            f"  ({figures['writes']} invalidations)"
        )


if __name__ == "__main__":
    main()
