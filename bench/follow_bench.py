"""Benchmark cache_follow: row events/s it sustains, and commit-to-invalidation latency.

    .venv/bin/python bench/follow_bench.py [--rows 50000] [--samples 500] [--database postgresql]

Starts a private MariaDB with a row binlog (tests/follow/mariadb.py), or with
``--database postgresql`` a private PostgreSQL 15 with wal_level=logical and a
wal2json slot (tests/follow/postgres.py), on a free loopback port under
bench-output/, maps the test models there, and uses the
memcached on 127.0.0.1:11211 (CACHELAYER_BENCH_CACHE=redis for Redis).
Throughput: N single-row autocommit transactions (INSERT, then UPDATE) are
written first, then one ``--once`` follower processes them all (decode, keys,
delivery, position). Latency: a follower runs in a thread while this process
updates one row at a time and times from the UPDATE call to the moment the
follower's invalidation of that key was delivered (the cache_invalidated signal).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.faults.servers import free_port  # noqa: E402
from tests.follow.mariadb import PASSWORD, USER, PrivateMariaDB  # noqa: E402
from tests.follow.postgres import PrivatePostgres  # noqa: E402

DATABASE = "clbench"
# PostgreSQL: the same churn, a COMMIT per row (a procedure may commit when CALLed outside a transaction).
PG_CHURN = (
    "CREATE PROCEDURE churn(n int) LANGUAGE plpgsql AS $$ BEGIN "
    "FOR i IN 1..n LOOP INSERT INTO testapp_item (value) VALUES (i - 1); COMMIT; END LOOP; "
    "FOR i IN 1..n LOOP UPDATE testapp_item SET value = value + 1 WHERE id = i; COMMIT; END LOOP; END $$"
)


def postgresql(server) -> bool:
    return isinstance(server, PrivatePostgres)


def setup(server, cache: str) -> None:
    if postgresql(server):
        server.psql(f"CREATE DATABASE {DATABASE} OWNER {USER}")
        url = f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{server.port}/{DATABASE}"
    else:
        server.sql(f"CREATE DATABASE {DATABASE}; SET GLOBAL binlog_row_metadata = 'FULL'")
        url = f"mysql://{USER}:{PASSWORD}@127.0.0.1:{server.port}/{DATABASE}"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        CACHELAYER_DB=url,
        CACHELAYER_TEST_BINLOG_DB=url,  # the tests' second aliases: the same database here
        CACHELAYER_TEST_WAL_DB=url,
        CACHELAYER_TEST_SETTINGS=json.dumps(
            {"CACHE_ALIAS": cache, "KEY_PREFIX": f"b{uuid.uuid4().hex[:10]}", "STATS": False}
        ),
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", run_syncdb=True, verbosity=0)  # testapp has no migrations
    if postgresql(server):
        call_command("cache_follow", create_slot=True, verbosity=0)
        call_command("cache_follow", replica_identity_full=True, verbosity=0)  # the test models' other keys


def write_rows(server, rows: int) -> None:
    """INSERT then UPDATE ``rows`` rows, one row per autocommit transaction (a stored procedure)."""
    if postgresql(server):
        with connect(server) as connection:
            connection.execute(PG_CHURN)
            connection.execute("CALL churn(%s)", (rows,))
        return
    with connect(server) as connection, connection.cursor() as cursor:  # the client would split the body at ';'
        cursor.execute(
            "CREATE PROCEDURE churn(n INT) BEGIN DECLARE i INT DEFAULT 0;"
            " WHILE i < n DO INSERT INTO testapp_item (value) VALUES (i); SET i = i + 1; END WHILE;"
            " SET i = 1; WHILE i <= n DO UPDATE testapp_item SET value = value + 1 WHERE id = i; SET i = i + 1; END WHILE; END"
        )
        cursor.execute("CALL churn(%s)", (rows,))


def connect(server):
    if postgresql(server):
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=server.port, user=USER, password=PASSWORD, dbname=DATABASE, autocommit=True
        )
    import pymysql

    return pymysql.connect(
        host="127.0.0.1", port=server.port, user=USER, password=PASSWORD, database=DATABASE, autocommit=True
    )


def throughput(server, rows: int) -> dict:
    from cachelayer.models import FollowerPosition
    from cachelayer.tasks.follow.follower import Follower

    Follower("default", once=True).run()  # stores the current position
    write_rows(server, rows)
    results = {}
    start_row = FollowerPosition.objects.get(database="default")
    for freeze in (True,) if postgresql(server) else (True, False):  # a slot cannot be read twice
        FollowerPosition.objects.filter(pk=start_row.pk).update(log_file=start_row.log_file, log_pos=start_row.log_pos)
        follower = Follower("default", once=True, freeze_schema=freeze)
        began = time.perf_counter()
        follower.run()
        seconds = time.perf_counter() - began
        events = follower.totals["rows"]
        results["slot" if postgresql(server) else f"freeze_schema={freeze}"] = {
            "row_events": events,
            "transactions": follower.totals["transactions"],
            "seconds": round(seconds, 3),
            "events_per_second": round(events / seconds),
        }
    return results


def latency(server, samples: int) -> dict:
    from cachelayer.signals import cache_invalidated
    from cachelayer.tasks.follow.follower import Follower
    from tests.testapp.models import Item

    seen: dict[str, float] = {}
    arrived = threading.Condition()

    def note(sender, keys=None, **kwargs):
        with arrived:
            for key in keys or ():
                seen.setdefault(key, time.perf_counter())
            arrived.notify_all()

    cache_invalidated.connect(note, sender=Item, weak=False)
    follower = Follower("default")
    thread = threading.Thread(target=follower.run, daemon=True)
    thread.start()
    time.sleep(2)  # connected and idle
    connection = connect(server)
    times = []
    with connection.cursor() as cursor:
        for n in range(samples):
            key = str(n % 1000 + 1)
            seen.pop(key, None)
            began = time.perf_counter()
            cursor.execute("UPDATE testapp_item SET value = value + 1 WHERE id = %s", (key,))
            with arrived:
                arrived.wait_for(lambda key=key: key in seen, timeout=5)
            if key in seen:
                times.append((seen[key] - began) * 1000)
            time.sleep(0.002)
    follower.stopping.set()
    thread.join(timeout=10)
    times.sort()
    return {
        "samples": len(times),
        "p50_ms": round(statistics.median(times), 2),
        "p99_ms": round(times[int(len(times) * 0.99) - 1], 2),
        "max_ms": round(times[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--database", choices=["mariadb", "postgresql"], default="mariadb")
    args = parser.parse_args()
    cache = os.environ.get("CACHELAYER_BENCH_CACHE", "memcached")
    kind = PrivatePostgres if args.database == "postgresql" else PrivateMariaDB
    server = kind(ROOT / "bench-output" / f"follow-{args.database}", free_port()).install().start()
    try:
        setup(server, cache)
        report = {
            "database": args.database,
            "cache": cache,
            "throughput": throughput(server, args.rows),
            "latency": latency(server, args.samples),
        }
    finally:
        server.stop()
    print(json.dumps(report, indent=2))
    (ROOT / "bench-output").mkdir(exist_ok=True)
    (ROOT / "bench-output" / f"follow_bench_{args.database}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
