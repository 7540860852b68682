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
    with open(args["out"], "w") as out:
        json.dump(merged, out)


def _mix(args) -> dict:
    """Random reads and committed increments until the deadline. With
    ``args["faults"]``, a database error (a killed connection) ends that operation
    only: a write whose commit may have happened is logged with no finish time."""
    from django.db import DatabaseError, connection, transaction

    from tests.testapp.models import Item

    rng = random.Random(args["seed"])
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
                writes.append((pk, new, started, time.monotonic_ns()))  # done: committed and invalidated
            else:
                value = Item.cached.get(pk).value
                reads.append((pk, value, started, time.monotonic_ns()))
        except tolerated:
            failures += 1
            if new is not None:
                writes.append((pk, new, started, None))  # may have committed: it bounds reads from above only
            connection.close()  # the next operation connects again
    return {"reads": reads, "writes": writes, "failures": failures}


def hold_lease(args):
    from cachelayer.engine import versions
    from tests.testapp.models import Item

    def hang(*_args, **_kwargs):
        open(args["ready"], "w").close()
        time.sleep(60)

    versions.query_rows = hang
    Item.cached.get(args["key"])


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
        {"mix": mix, "hold-lease": hold_lease, "save": save, "read-twice": read_twice}[mode](args)


if __name__ == "__main__":
    main()
