"""The hit-path cost of the payload format: a pk hit against a raw ``cache.get``.

One process, the test settings' memcached (pymemcache) and a throw-away SQLite
file. ``raw`` is Django's ``cache.get`` of one key holding the row's values
(pickled by Django, unchecked), the physical limit of a hit; the others are
``Item.cached.get(pk)`` under each serializer. Rounds alternate between the
two; each reports the median over rounds of wall time and of this process's
CPU time per call (CPU time moves less when other jobs share the cores).
Run from the repository (for a "before" number, with PYTHONPATH naming
another checkout):

    DJANGO_SETTINGS_MODULE=tests.settings PYTHONPATH=$PWD PYTHONDONTWRITEBYTECODE=1 \\
        CACHELAYER_DB=sqlite:////tmp/payload_hit.sqlite3 .venv/bin/python bench/payload_hit.py \\
        [--cache pylibmc] [--serializers pickle]

``--cache`` names another cache of the test settings (``pylibmc``: the same
memcached through libmemcached, whose raw read is the fastest of the clients).
"""

import argparse
import statistics
import time
import uuid

import django

ROUNDS, OPS, WARMUP = 31, 1000, 2000


def _per_call(call) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(OPS):
        call()
    return (time.perf_counter() - wall) / OPS * 1e6, (time.process_time() - cpu) / OPS * 1e6


def compare(raw, hit, name: str) -> dict:
    """Print and return the medians of ``raw`` and ``hit`` (wall and CPU us a call, and ratios to raw)."""
    for _ in range(WARMUP):
        raw(), hit()
    samples = {"raw cache.get": [], name: []}
    for _ in range(ROUNDS):
        samples["raw cache.get"].append(_per_call(raw))
        samples[name].append(_per_call(hit))
    medians = {key: [statistics.median(s[i] for s in values) for i in (0, 1)] for key, values in samples.items()}
    base = medians["raw cache.get"]
    for key, (wall, cpu) in medians.items():
        print(f"{key:22} wall {wall:7.1f} us ({wall / base[0]:.2f}x)   cpu {cpu:7.1f} us ({cpu / base[1]:.2f}x)")
    (raw_wall, raw_cpu), (wall, cpu) = base, medians[name]
    return {"raw_wall_us": raw_wall, "wall_us": wall, "wall_ratio": wall / raw_wall, "cpu_ratio": cpu / raw_cpu}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", default="memcached", help="a cache alias of the test settings")
    parser.add_argument("--serializers", default="pickle,json", help="comma-separated")
    options = parser.parse_args()
    django.setup()
    from django.core.cache import caches
    from django.core.management import call_command
    from django.test import override_settings

    from tests.testapp.models import Item

    call_command("migrate", run_syncdb=True, verbosity=0)  # the test app has no migrations
    item = Item.objects.create(value=17, text="user17@example.com")
    raw_key = f"raw-{uuid.uuid4().hex}"
    cache = caches[options.cache]
    cache.set(raw_key, Item.objects.filter(pk=item.pk).values_list().get())
    for serializer in options.serializers.split(","):
        prefix = f"b{uuid.uuid4().hex[:12]}"
        with override_settings(
            CACHELAYER={"CACHE_ALIAS": options.cache, "KEY_PREFIX": prefix, "SERIALIZER": serializer}
        ):
            Item.cached.get(item.pk)  # loads the definitions and fills
            compare(lambda: cache.get(raw_key), lambda: Item.cached.get(item.pk), f"pk hit, {serializer}")
    item.delete()


if __name__ == "__main__":
    main()
