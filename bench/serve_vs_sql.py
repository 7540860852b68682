"""cache_serve vs SQL for key lookups, and vs a real memcached under memcslap.

The InnoDB memcached plugin's headline claim: the memcached API beats SQL for
key lookups. Measured in one run, interleaved rounds after a warm-up:

1. ``get`` of one cached row through cache_serve (pymemcache, persistent
   connection) vs ``SELECT value FROM testapp_keyvalue WHERE `key` = %s``
   over a fresh mysqlclient connection per request and over a persistent one
   (and a raw memcached ``get`` for reference);
2. ``get`` throughput with warm data: LOAD_PROCESSES processes, each with
   one pymemcache connection, send a bounded number of gets of random keys
   among LOAD_KEYS rows already cached, against cache_serve and against a
   real memcached holding the same keys, interleaved rounds;
3. memcslap ``--test=get`` throughput against cache_serve as a fraction of
   the same load against a real memcached server (memcslap stores fresh
   keys first, so through cache_serve many of its gets are first reads
   after a write: misses that read the database).

Run (MariaDB; starts a private memcached and cache_serve on free ports):

    CACHELAYER_DB=mysql://cachelayer:cachelayer@127.0.0.1:3306/cachelayer_bench \
        .venv/bin/python bench/serve_vs_sql.py

With ``--profile PATH`` it runs only the warm-get load (2), against a
cache_serve under cProfile (the event loop's thread), writes the profile to
PATH and prints where the loop's time went and how many gets one multi-get
carried on average; ``--warm-only`` runs the warm-get load (2) alone.

The database is created when missing; use one of its own: the run replaces
its container named ``default``.

Not part of the test suite.
"""

import argparse
import multiprocessing
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.interleave import compare  # noqa: E402

ROUNDS, OPS = 7, 1000  # latency: interleaved rounds of OPS requests each
SLAP_ROUNDS, SLAP_CONCURRENCY, SLAP_OPS = 3, 4, 5000  # memcslap: per round, per thread
KEY, VALUE = "benchkey", "x" * 64
LOAD_ROUNDS, LOAD_PROCESSES, LOAD_OPS, LOAD_KEYS = 5, 4, 4000, 100  # warm-get load: per round, per process


def _load(port: int, keys: list, ops: int, seed: int, start, results) -> None:
    from pymemcache.client.base import Client

    client = Client(("127.0.0.1", port), connect_timeout=5, timeout=10)
    draws = random.Random(seed).choices(keys, k=ops)
    client.get(keys[0])  # connected
    start.wait()
    began = time.perf_counter()
    for key in draws:
        client.get(key)
    results.put(time.perf_counter() - began)


def warm_get_rate(port: int, keys: list, seed: int) -> float:
    """Return gets/s of LOAD_PROCESSES processes, LOAD_OPS gets each, against 127.0.0.1:port."""
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(LOAD_PROCESSES), context.Queue()
    processes = [
        context.Process(target=_load, args=(port, keys, LOAD_OPS, seed + i, start, results))
        for i in range(LOAD_PROCESSES)
    ]
    for process in processes:
        process.start()
    elapsed = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    return LOAD_PROCESSES * LOAD_OPS / max(elapsed)


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) process ``pid`` has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"process {process.args} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on {port} after {seconds} s")


def start_memcached() -> tuple[subprocess.Popen, int]:
    port = free_port()
    user = ["-u", "memcache" if shutil.which("memcached") and os.getuid() == 0 else os.environ.get("USER", "")]
    command = ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "256", "-t", "4"]
    process = subprocess.Popen(command + (user if os.getuid() == 0 else []), stdout=subprocess.DEVNULL)
    wait_port(port, process)
    return process, port


def slap(port: int) -> float:
    """Return memcslap get throughput (keys/s) against 127.0.0.1:port."""
    run = subprocess.run(
        [
            "memcslap",
            f"--servers=127.0.0.1:{port}",
            f"--concurrency={SLAP_CONCURRENCY}",
            f"--execute-number={SLAP_OPS}",
            "--test=get",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    output = run.stdout + run.stderr
    if "error" in output.lower():
        sys.exit(f"memcslap reported errors:\n{output}")
    keys, seconds = re.search(r"Time to get\s+(\d+) keys by\s+\d+ threads:\s+([\d.]+) seconds", output).groups()
    return int(keys) / float(seconds)


def create_database(database: dict) -> dict:
    """Create the MariaDB/MySQL database of ``database`` (a DATABASES entry) when missing;
    return mysqlclient's connect arguments for it."""
    import MySQLdb

    if not database["ENGINE"].endswith("mysql"):
        sys.exit("set CACHELAYER_DB=mysql://... (the benchmark runs against MariaDB/MySQL)")
    connect = {
        "host": database["HOST"],
        "port": int(database["PORT"] or 3306),
        "user": database["USER"],
        "password": database["PASSWORD"],
    }
    with MySQLdb.connect(**connect) as server:
        server.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{database['NAME']}` CHARACTER SET utf8mb4")
    return {**connect, "database": database["NAME"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", metavar="PATH", help="profile cache_serve's loop under the warm load only")
    parser.add_argument("--warm-only", action="store_true", help="run only the warm-get load (2)")
    args = parser.parse_args()
    memcached, memcached_port = start_memcached()
    try:
        run(memcached_port, args.profile, args.warm_only)
    finally:
        memcached.terminate()
        memcached.wait(10)


def warm_keys(serve_client, model) -> list:
    """Create LOAD_KEYS rows and read them once through cache_serve (a miss and a fill each)."""
    keys = [f"warm{i}" for i in range(LOAD_KEYS)]
    model.objects.bulk_create([model(key=key, value=VALUE) for key in keys], ignore_conflicts=True)
    serve_client.get_many(keys)
    assert serve_client.get_many(keys) == {key: VALUE.encode() for key in keys}
    return keys


def print_profile(path: str, gets: int) -> None:
    """Print the loop's top functions and the gets per multi-get of a profile."""
    import pstats

    stats = pstats.Stats(path)
    stats.sort_stats("tottime").print_stats(30)
    # One versions.fetch (before the loop's own I/O) or versions._states (since) per multi-get:
    batches = sum(
        value[1]
        for (path, _, name), value in stats.stats.items()
        if path.endswith("versions.py") and name in ("fetch", "_states")
    )
    if batches:
        print(f"gets per multi-get: {gets / batches:.2f} ({gets} gets, {batches} multi-gets)")


def run(memcached_port: int, profile: str | None = None, warm_only: bool = False) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.settings", CACHELAYER_CACHE=f"memcached://127.0.0.1:{memcached_port}"
    )
    import django

    django.setup()
    import MySQLdb
    from django.conf import settings
    from django.contrib.contenttypes.models import ContentType
    from django.core.management import call_command
    from pymemcache.client.base import Client

    from cachelayer.models import Container, PoolMembership
    from tests.testapp.models import KeyValue

    connect = create_database(settings.DATABASES["default"])
    call_command("migrate", run_syncdb=True, verbosity=0)
    # The last run's private memcached (another port) is gone: until its server list
    # retires, every read would be disputed between the two lists and go to the database.
    PoolMembership.objects.all().delete()
    Container.objects.filter(name="default").delete()
    container = Container.objects.create(
        name="default",
        content_type=ContentType.objects.get_for_model(KeyValue),
        key_columns="key",
        value_columns="value",
        flags_column="flags",
        cas_column="cas",
        expire_time_column="expires",
        exposed=True,
    )
    KeyValue.objects.update_or_create(key=KEY, defaults={"value": VALUE})
    port = free_port()
    profiler = ["-m", "cProfile", "-o", profile] if profile else []
    serve = subprocess.Popen([sys.executable, *profiler, "manage.py", "cache_serve", "--port", str(port)], cwd=ROOT)
    try:
        wait_port(port, serve)
        if profile:
            keys = warm_keys(Client(("127.0.0.1", port), connect_timeout=5, timeout=10), KeyValue)
            rates = [warm_get_rate(port, keys, seed=round_ * 100) for round_ in range(LOAD_ROUNDS)]
            print(f"cache_serve under cProfile: {statistics.median(rates):.0f} gets/s")
            serve.terminate()
            serve.wait(30)
            print_profile(profile, LOAD_ROUNDS * LOAD_PROCESSES * (LOAD_OPS + 1))
            return
        sql = "SELECT `value` FROM testapp_keyvalue WHERE `key` = %s"

        def fresh_connection():
            conn = MySQLdb.connect(**connect)
            cursor = conn.cursor()
            cursor.execute(sql, (KEY,))
            cursor.fetchone()
            conn.close()

        persistent = MySQLdb.connect(**connect).cursor()

        def persistent_connection():
            persistent.execute(sql, (KEY,))
            persistent.fetchone()

        serve_client = Client(("127.0.0.1", port), connect_timeout=5, timeout=10)
        raw_client = Client(("127.0.0.1", memcached_port), connect_timeout=5, timeout=10)
        raw_client.set("raw", VALUE)
        assert serve_client.get(KEY) == VALUE.encode()
        contenders = {
            "cache_serve get (hit)": lambda: serve_client.get(KEY),
            "SELECT, fresh connection": fresh_connection,
            "SELECT, persistent connection": persistent_connection,
            "memcached get (raw)": lambda: raw_client.get("raw"),
        }
        if not warm_only:
            compare(contenders, "cache_serve get (hit)", ROUNDS, OPS, warmup=200)

        keys = warm_keys(serve_client, KeyValue)
        raw_client.set_many(dict.fromkeys(keys, VALUE))
        load, serve_cpu = {"cache_serve": [], "memcached": []}, 0.0
        for round_ in range(LOAD_ROUNDS):
            order = [("cache_serve", port), ("memcached", memcached_port)]
            for name, target in order if round_ % 2 == 0 else order[::-1]:
                cpu = cpu_seconds(serve.pid)
                load[name].append(warm_get_rate(target, keys, seed=round_ * 100))
                serve_cpu += cpu_seconds(serve.pid) - cpu if name == "cache_serve" else 0.0
        serve_load, memcached_load = (statistics.median(load[name]) for name in ("cache_serve", "memcached"))
        print(
            f"\nwarm gets, {LOAD_PROCESSES} processes x 1 pymemcache connection x {LOAD_OPS} gets of "
            f"{LOAD_KEYS} cached keys, median of {LOAD_ROUNDS} interleaved rounds"
        )
        print(f"cache_serve {serve_load:10.0f} gets/s")
        print(f"memcached   {memcached_load:10.0f} gets/s")
        print(f"cache_serve / memcached = {serve_load / memcached_load:.3f}")
        print(f"cache_serve CPU time per get: {serve_cpu / (LOAD_ROUNDS * LOAD_PROCESSES * LOAD_OPS) * 1e6:.1f} us")

        if warm_only:
            return
        slap(port), slap(memcached_port)  # warm-up (loads the keys)
        rates = {"cache_serve": [], "memcached": []}
        for _ in range(SLAP_ROUNDS):
            rates["cache_serve"].append(slap(port))
            rates["memcached"].append(slap(memcached_port))
        serve_rate, memcached_rate = (statistics.median(rates[name]) for name in ("cache_serve", "memcached"))
        print(
            f"\nmemcslap --test=get --concurrency={SLAP_CONCURRENCY} --execute-number={SLAP_OPS}, "
            f"median of {SLAP_ROUNDS}"
        )
        print(f"cache_serve {serve_rate:10.0f} gets/s")
        print(f"memcached   {memcached_rate:10.0f} gets/s")
        print(f"cache_serve / memcached = {serve_rate / memcached_rate:.3f}")
    finally:
        serve.terminate()
        serve.wait(10)
        container.delete()
        KeyValue.objects.all().delete()


if __name__ == "__main__":
    main()
