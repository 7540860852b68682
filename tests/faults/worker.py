"""A separate OS process for the fault tests: ``python -m tests.faults.worker MODE ARGS_JSON``.

Environment: DJANGO_SETTINGS_MODULE=tests.settings, CACHELAYER_DB naming the
test database, CACHELAYER_JSON with the CACHELAYER settings to apply.

Modes:
  mix         random reads and committed increments for a bounded time, from
              args["threads"] threads; writes a JSON log of every read and write
              to args["out"] (args["faults"]: a database error ends one operation)
  hold-lease  miss one key and hang inside the database read while holding
              its fill lease (the test then kills this process)
  read-twice  read Item args["pk"] twice through the cache; print the values
              and the SQL queries of the second read as JSON
  watch       read Item args["pk"] through a near-cache until it holds args["until"]
              (args["seconds"] at most); touch args["ready"] once a read was a near-cache
              hit; write {"saw": the last value, "near_hits": ...} to args["out"]
  save        set Item args["pk"]'s value to args["value"] and commit
              (args["caches"], when given, replaces CACHES: another server list)
"""

import json
import os
import random
import sys
import time

import django


def mix(args):
    """``args["threads"]`` threads (default 1) of ``_mix``; one log of them all."""
    import threading

    from django.db import connections

    logs = [None] * args.get("threads", 1)

    def run(index):
        try:
            logs[index] = _mix({**args, "seed": args["seed"] * 1000 + index})
        finally:
            connections.close_all()  # this thread's

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(logs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    merged = {name: [entry for log in logs for entry in log[name]] for name in ("reads", "writes")}
    merged["failures"] = sum(log["failures"] for log in logs)
    from cachelayer.adapters.registry import get_adapter
    from cachelayer.core import conf

    near = get_adapter(conf.get("CACHE_ALIAS")).near
    merged["near_hits"] = 0 if near is None else near.counts["hits"]
    from cachelayer.engine import stats

    merged["stats"] = stats.snapshot()  # this process's counters, by container
    with open(args["out"], "w") as out:
        json.dump(merged, out)


def _mix(args) -> dict:
    """Random reads and committed increments until the deadline. With
    ``args["faults"]``, a database error (a killed connection) ends that operation
    only: a write whose commit may have happened is logged with no finish time, and
    so is a write this process may still owe invalidations for (a server of its is
    dirty: the outbox holds them until the replay; another process that never saw
    the server fail may serve the old value until then, as the README's known limits say)."""
    from django.db import DatabaseError, connection, transaction

    from cachelayer.adapters.registry import get_adapter
    from cachelayer.core import conf
    from tests.testapp.models import Item

    adapter = get_adapter(conf.get("CACHE_ALIAS"))

    rng, pid = random.Random(args["seed"]), os.getpid()
    ids, reads, writes, failures = args["ids"], [], [], 0
    tolerated = DatabaseError if args.get("faults") else ()
    deadline = time.monotonic() + args["seconds"]
    for _ in range(args["max_ops"]):
        if time.monotonic() > deadline:
            break
        pk = rng.choice(ids)
        started, new = time.monotonic_ns(), None
        try:
            if rng.random() < args["write_ratio"]:
                with transaction.atomic():
                    item = Item.objects.select_for_update().get(pk=pk)
                    item.value = new = item.value + 1  # strictly increasing per key: the row lock orders writers
                    item.save(update_fields=["value"])
                done = None if adapter.health.dirty else time.monotonic_ns()  # committed; invalidated unless owed
                writes.append((pk, new, started, done, pid))
            else:
                value = Item.cached.get(pk).value
                reads.append((pk, value, started, time.monotonic_ns(), pid))
        except tolerated:
            failures += 1
            if new is not None:
                writes.append((pk, new, started, None, pid))  # may have committed: it bounds reads from above only
            connection.close()  # the next operation connects again
    return {"reads": reads, "writes": writes, "failures": failures}


def hold_lease(args):
    from cachelayer.engine import loaders
    from tests.testapp.models import Item

    def hang(*_args, **_kwargs):
        open(args["ready"], "w").close()
        time.sleep(60)

    loaders.query_rows = hang
    Item.cached.get(args["key"])


def watch(args):
    from cachelayer.adapters.registry import get_adapter
    from cachelayer.core import conf
    from tests.testapp.models import Item

    near = get_adapter(conf.get("CACHE_ALIAS")).near
    deadline, value = time.monotonic() + args["seconds"], None
    while time.monotonic() < deadline:
        value = Item.cached.get(args["pk"]).value
        if value == args["until"]:
            break
        if near.counts["hits"] and not os.path.exists(args["ready"]):
            open(args["ready"], "w").close()
        time.sleep(0.001)
    with open(args["out"], "w") as out:
        json.dump({"saw": value, "near_hits": near.counts["hits"]}, out)


def save(args):
    from tests.testapp.models import Item

    item = Item.objects.get(pk=args["pk"])
    item.value = args["value"]
    item.save(update_fields=["value"])


def read_twice(args):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.testapp.models import Item

    first = Item.cached.get(args["pk"]).value
    with CaptureQueriesContext(connection) as second:
        value = Item.cached.get(args["pk"]).value
    print(json.dumps({"values": [first, value], "queries": len(second)}))


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    from django.test import override_settings

    mode, args = sys.argv[1], json.loads(sys.argv[2])
    caches = {"CACHES": args["caches"]} if "caches" in args else {}
    with override_settings(CACHELAYER=json.loads(os.environ["CACHELAYER_JSON"]), **caches):
        modes = {"mix": mix, "hold-lease": hold_lease, "save": save, "read-twice": read_twice, "watch": watch}
        modes[mode](args)


if __name__ == "__main__":
    main()
