"""cache_serve under 1,000 concurrent connections: ``get`` latency, threads, database connections.

Issue 21 measured 500 connections at 501 threads, 501 database connections
and a ``get`` p99 of 1.77 s (a thread and a connection per client). This
opens CONNECTIONS connections at once (from PEERS loopback addresses, so the
per-peer limit admits them), holds them all open, and has each send one
``get`` of a random cached key every INTERVAL seconds (random phase) for
SECONDS seconds, in CLIENT_PROCESSES processes of asyncio clients; then every
connection sends one ``get`` at the same instant (a burst). It reports the
latency percentiles of both, and the server's threads (/proc/PID/task) and
database connections (information_schema.PROCESSLIST) while all are open.
Two containers' policies: ``caching`` with warm data (hits, answered on the
event loop) and ``db_only`` (every get is a SELECT on the --db-workers pool).

Run (MariaDB; starts a private memcached and cache_serve on free loopback ports):

    CACHELAYER_DB=mysql://cachelayer:cachelayer@127.0.0.1:3306/cachelayer_bench \\
        .venv/bin/python bench/serve_load.py [--interval 0.5] [--seconds 10] [--connections 1000]

Bounded: connections x (seconds / interval + 1) gets per policy, every read
under a timeout. Not part of the test suite.
"""

import argparse
import asyncio
import multiprocessing
import os
import random
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.serve_vs_sql import cpu_seconds, create_database, free_port, start_memcached, wait_port  # noqa: E402

CONNECTIONS, PEERS, CLIENT_PROCESSES = 1000, 4, 2
SECONDS, INTERVAL = 10.0, 0.5  # each connection: one get every INTERVAL s -> CONNECTIONS / INTERVAL gets/s
KEYS, VALUE = 100, "x" * 64
REPLY_TIMEOUT = 30  # seconds; a reply slower than this fails the run


def raise_file_limit(files: int) -> None:
    """Raise the soft fd limit (children inherit it): 1,000 sockets pass the usual 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < files:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (files if hard == resource.RLIM_INFINITY else min(files, hard), hard)
        )


async def _get(reader, writer, key: bytes) -> float:
    began = time.perf_counter()
    writer.write(b"get " + key + b"\r\n")
    async with asyncio.timeout(REPLY_TIMEOUT):
        reply = await reader.readuntil(b"END\r\n")
    if not reply.startswith(b"VALUE "):
        raise RuntimeError(f"unexpected reply {reply[:80]!r}")
    return time.perf_counter() - began


async def _clients(port: int, sources: list[str], keys: list[bytes], seed: int, pace: tuple, start, results) -> None:
    seconds, interval = pace
    rng = random.Random(seed)
    streams = [await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)) for source in sources]
    results.put(("connected", len(streams)))
    await asyncio.to_thread(start.wait)
    deadline = time.monotonic() + seconds

    async def paced(reader, writer):
        latencies = []
        await asyncio.sleep(rng.random() * interval)
        while time.monotonic() < deadline:
            began = time.monotonic()
            latencies.append(await _get(reader, writer, rng.choice(keys)))
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - began)))
        return latencies

    paced_latencies = [x for each in await asyncio.gather(*(paced(*s) for s in streams)) for x in each]
    await asyncio.to_thread(start.wait)  # every process finished its paced phase: burst together
    burst = await asyncio.gather(*(_get(reader, writer, rng.choice(keys)) for reader, writer in streams))
    results.put(("latencies", paced_latencies, burst))
    await asyncio.to_thread(start.wait)  # the server's threads and connections are counted now
    for _, writer in streams:
        writer.close()


def _client_process(*args) -> None:
    asyncio.run(_clients(*args))


def percentiles(latencies: list[float]) -> str:
    cuts = statistics.quantiles(latencies, n=100)
    return (
        f"{len(latencies):6d} gets  p50 {cuts[49] * 1000:6.2f} ms  p99 {cuts[98] * 1000:6.2f} ms  "
        f"max {max(latencies) * 1000:7.2f} ms"
    )


def database_connections() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()"
        )
        return cursor.fetchone()[0]


def load(port: int, pid: int, keys: list[bytes], options) -> None:
    """Run the paced phase and the burst against cache_serve on ``port``; print what they measured."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(CLIENT_PROCESSES + 1), context.Queue()
    sources = [f"127.0.0.{2 + n % PEERS}" for n in range(options.connections)]
    pace = (options.seconds, options.interval)
    processes = [
        context.Process(
            target=_client_process, args=(port, sources[n::CLIENT_PROCESSES], keys, n, pace, start, results)
        )
        for n in range(CLIENT_PROCESSES)
    ]
    for process in processes:
        process.start()
    connected = sum(results.get(timeout=120)[1] for _ in processes)
    cpu = cpu_seconds(pid)
    start.wait(timeout=120)
    start.wait(timeout=options.seconds + 120)
    paced, burst = [], []
    for _ in processes:
        _, each_paced, each_burst = results.get(timeout=120)
        paced += each_paced
        burst += each_burst
    cpu = cpu_seconds(pid) - cpu
    threads, database = len(os.listdir(f"/proc/{pid}/task")), database_connections()
    start.wait(timeout=120)
    for process in processes:
        process.join(60)
    print(f"  {connected} connections open: server threads {threads}, database connections {database}")
    print(f"  paced ({connected / options.interval:.0f} gets/s for {options.seconds:.0f} s): {percentiles(paced)}")
    print(f"  burst (all {connected} at once):       {percentiles(burst)}")
    print(f"  server CPU time per get: {cpu / (len(paced) + len(burst)) * 1e6:.0f} us")


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    arguments.add_argument("--connections", type=int, default=CONNECTIONS)
    arguments.add_argument("--seconds", type=float, default=SECONDS, help="length of the paced phase")
    arguments.add_argument("--interval", type=float, default=INTERVAL, help="seconds between a connection's gets")
    options = arguments.parse_args()
    raise_file_limit(4 * options.connections)
    memcached, memcached_port = start_memcached()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.settings", CACHELAYER_CACHE=f"memcached://127.0.0.1:{memcached_port}"
    )
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.contenttypes.models import ContentType
    from django.core.management import call_command
    from pymemcache.client.base import Client

    from cachelayer.models import CachePolicy, Container
    from tests.testapp.models import KeyValue

    create_database(settings.DATABASES["default"])
    call_command("migrate", run_syncdb=True, verbosity=0)
    Container.objects.filter(name="default").delete()
    policy, _ = CachePolicy.objects.get_or_create(policy_name="serve_load")
    container = Container.objects.create(
        name="default",
        content_type=ContentType.objects.get_for_model(KeyValue),
        key_columns="key",
        value_columns="value",
        policy=policy,
        exposed=True,
    )
    keys = [f"load{i}" for i in range(KEYS)]
    KeyValue.objects.bulk_create([KeyValue(key=key, value=VALUE) for key in keys], ignore_conflicts=True)
    port = free_port()
    command = [
        sys.executable,
        "manage.py",
        "cache_serve",
        "--port",
        str(port),
        "--max-connections",
        str(options.connections + 24),
    ]
    serve = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        wait_port(port, serve)
        print(" ".join(command[1:]))
        for get_policy in ("caching", "db_only"):
            CachePolicy.objects.filter(pk=policy.pk).update(get_policy=get_policy)
            container.save()  # announce the edit to cache_serve
            client = Client(("127.0.0.1", port), connect_timeout=5, timeout=10)
            for _ in range(2):
                assert client.get_many(keys) == {key: VALUE.encode() for key in keys}  # a miss, a fill; then hits
            client.close()
            print(f"get_policy {get_policy}:")
            load(port, serve.pid, [key.encode() for key in keys], options)
    finally:
        serve.terminate()
        serve.wait(10)
        memcached.terminate()
        memcached.wait(10)
        container.delete()
        policy.delete()
        KeyValue.objects.filter(key__in=keys).delete()


if __name__ == "__main__":
    main()
