"""A pk hit taken apart, layer by layer: where its time goes above the multi-get.

One process, the test settings' cache ``ALIAS`` (``pylibmc`` or ``memcached``)
and a throw-away SQLite file. Each line times one layer of the same hit, from
``Item.cached.get`` down to the adapter's multi-get of the hit's 4 keys, beside
Django's own ``cache.get`` of one key. Best of 5 rounds: run it with a core
kept busy beside it (bench/idle_cores.py says why):

    DJANGO_SETTINGS_MODULE=tests.settings PYTHONPATH=$PWD \\
        CACHELAYER_DB=sqlite:////tmp/hit_layers.sqlite3 .venv/bin/python bench/hit_layers.py ALIAS
"""

import sys
import time
import uuid

import django

OPS, ROUNDS = 3000, 5


def best(call) -> str:
    """The best round's wall time a call, with that round's CPU time, in microseconds."""
    wall, cpu = float("inf"), 0.0
    for _ in range(ROUNDS):
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(OPS):
            call()
        took = (time.perf_counter() - started) / OPS * 1e6
        if took < wall:
            wall, cpu = took, (time.process_time() - cpu_started) / OPS * 1e6
    return f"{wall:6.1f} us (cpu {cpu:5.1f})"


def main() -> None:
    django.setup()
    from django.core.cache import caches
    from django.core.management import call_command
    from django.test import override_settings

    from cachelayer.engine import versions
    from cachelayer.engine.registry import registry
    from tests.testapp.models import Item

    call_command("migrate", run_syncdb=True, verbosity=0)  # the test app has no migrations
    alias = sys.argv[1] if len(sys.argv) > 1 else "memcached"
    prefix = "h" + uuid.uuid4().hex[:8]
    with override_settings(CACHELAYER={"CACHE_ALIAS": alias, "KEY_PREFIX": prefix, "SERIALIZER": "pickle"}):
        item = Item.objects.create(value=17, text="x")
        Item.cached.get(item.pk)  # loads the definitions and fills
        definition, key = registry.for_cached_model(Item), str(item.pk)
        _, groups = versions._groups(definition, [key])
        adapter = definition.adapter
        raw = caches[alias]
        raw.set(f"{prefix}-raw", Item.objects.filter(pk=item.pk).values_list().get())
        print(f"{alias}:")
        print("  Item.cached.get             ", best(lambda: Item.cached.get(item.pk)))
        print("  versions.fetch              ", best(lambda: versions.fetch(definition, [key])))
        print("  versions.fetch_fresh        ", best(lambda: versions.fetch_fresh(adapter, groups, shared=True)))
        print(
            "  the adapter's 4-key get     ", best(lambda: adapter._get_many_chunked({adapter.servers[0]: groups[key]}))
        )
        print("  Django's cache.get of 1 key ", best(lambda: raw.get(f"{prefix}-raw")))
        item.delete()


if __name__ == "__main__":
    main()
