"""Redis Cluster: cachelayer's reads against a raw ``RedisCluster`` client, in one run.

Starts a 3-master cluster of its own (tests/faults/cluster.py, no replicas) and
a throw-away SQLite file. Rows, each the median over rounds of wall and CPU
time per call, as a ratio to the raw client's call beside it:

* ``Item.cached.get(pk)`` (a hit) against ``RedisCluster.get`` of one key;
* ``Item.cached.get_many(100 pks)`` against ``mget_nonatomic`` of 100 keys;
* the hit with the pool-membership check off (engine/topology.py's renewal
  and trust deadlines pushed to infinity) against the hit with it on.

    DJANGO_SETTINGS_MODULE=tests.settings PYTHONPATH=$PWD PYTHONDONTWRITEBYTECODE=1 \\
        CACHELAYER_DB=sqlite:////tmp/cluster_hit.sqlite3 .venv/bin/python bench/cluster_hit.py [--out FILE.json]

``bash bench/run.sh`` runs it too (bench/suite.py) and puts its rows in the report.
"""

import argparse
import json
import uuid

import django

from bench.payload_hit import compare

ROWS = 100


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args()
    django.setup()
    from django.core.management import call_command
    from django.test import override_settings

    from cachelayer.adapters.rediscluster import make_cluster
    from cachelayer.adapters.registry import get_adapter
    from tests.faults.cluster import Cluster
    from tests.testapp.models import Item

    call_command("migrate", run_syncdb=True, verbosity=0)  # the test app has no migrations
    cluster = Cluster(replicas=0).start()
    try:
        entry = {"BACKEND": "cachelayer.backends.RedisClusterCache", "LOCATION": cluster.urls}
        prefix = f"b{uuid.uuid4().hex[:12]}"
        with override_settings(
            CACHES={"default": entry, "cluster": entry}, CACHELAYER={"CACHE_ALIAS": "cluster", "KEY_PREFIX": prefix}
        ):
            items = [Item.objects.create(value=i, text=f"user{i}@example.com") for i in range(ROWS)]
            pks = [item.pk for item in items]
            raw = make_cluster(cluster.urls, {})
            keys = [f"raw:{pk}" for pk in pks]
            raw.mset_nonatomic(
                {key: repr(Item.objects.filter(pk=pk).values_list().get()) for key, pk in zip(keys, pks)}
            )
            Item.cached.get_many(pks)  # loads the definitions and fills
            rows = {
                "pk hit": compare(lambda: raw.get(keys[0]), lambda: Item.cached.get(pks[0]), "pk hit"),
                f"get_many({ROWS})": compare(
                    lambda: raw.mget_nonatomic(keys), lambda: Item.cached.get_many(pks), f"get_many({ROWS})"
                ),
            }
            health = get_adapter("cluster").health

            def hit_unchecked():
                health.renew_at = health.trusted_until = float("inf")
                Item.cached.get(pks[0])

            rows["pk hit, check off (vs check on)"] = compare(
                lambda: Item.cached.get(pks[0]), hit_unchecked, "pk hit, check off"
            )
            Item.objects.all().delete()
            if args.out:
                with open(args.out, "w") as out:
                    json.dump(rows, out, indent=2)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
