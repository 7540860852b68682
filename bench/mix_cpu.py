"""CPU per operation of the 95/5 mix, split by process: where 2 cores go.

The mix's throughput on a 2-core machine is bounded by the CPU every
operation costs in all processes together: the Python workers, mysqld and
the cache server. This runs the mix of bench/worker.py (4 processes, 1 s
warm-up, 4 s measured) for the ORM and for cachelayer on memcached
(pymemcache and pylibmc) and Redis, against private cache servers, and
reads each process's CPU time from /proc before and after.

    CACHELAYER_DB=mysql://cachelayer:cachelayer@127.0.0.1:3306/cachelayer_bench \\
        .venv-bench/bin/python -m bench.mix_cpu [ROUNDS]

The database must hold the benchmark's rows and containers (run
``bash bench/run.sh --quick`` once). Not part of the test suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.suite import forget_pools
from tests.faults.servers import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
PROCESSES, WARMUP, SECONDS = 4, 1.0, 4.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def pids(name: str) -> list[int]:
    return [int(p) for p in subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout.split()]


def run(flavor: str, contender: str, cache_url: str, server: ServerProcess | None) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "bench.suite_settings",
        "BENCH_FLAVOR": flavor,
        "CACHELAYER_CACHE": cache_url,
    }
    env.setdefault("CACHELAYER_DB", "mysql://cachelayer:cachelayer@127.0.0.1:3306/cachelayer_bench")
    arguments = [str(WARMUP), str(SECONDS), "200000", "0.05"]
    forget_pools(env)  # each contender is a new deployment (the last one's cache may be another kind)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.worker", "mix", contender, str(seed), *arguments],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in range(PROCESSES)
    ]
    for worker in workers:
        worker.stdout.readline()  # ready
    database = pids("mariadbd") or pids("mysqld")
    others = {"mysqld": database, "cache": [server.process.pid] if server else []}
    before = {name: sum(map(cpu_seconds, group)) for name, group in others.items()}
    before["workers"] = sum(cpu_seconds(w.pid) for w in workers)
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = [json.loads(worker.stdout.readline()) for worker in workers]
    after = {name: sum(map(cpu_seconds, group)) for name, group in others.items()}
    after["workers"] = sum(cpu_seconds(w.pid) for w in workers)
    for worker in workers:
        worker.wait(timeout=60)
    operations = sum(r["reads"] + r["writes"] for r in results)
    measured = max(r["seconds"] for r in results)
    share = measured / (measured + WARMUP)  # CPU was read around warm-up and measurement
    per_op = {name: (after[name] - before[name]) * share / operations * 1e6 for name in after}
    reads = sum(r["reads"] for r in results)
    return {
        "ops_per_s": operations / measured,
        "us_per_op": per_op,
        "total": sum(per_op.values()),
        "sql_free_reads": sum(r["sql_free_reads"] for r in results) / reads,
    }


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    memcached, redis = ServerProcess("memcached").start(), ServerProcess("redis").start()
    setups = [
        ("ORM", "plain", "ORM", f"memcached://{memcached.location}", None),
        (
            "cachelayer, memcached (pymemcache)",
            "cachelayer",
            "cachelayer",
            f"memcached://{memcached.location}",
            memcached,
        ),
        ("cachelayer, memcached (pylibmc)", "cachelayer", "cachelayer", f"pylibmc://{memcached.location}", memcached),
        ("cachelayer, Redis", "cachelayer", "cachelayer", f"redis://127.0.0.1:{redis.port}/0", redis),
    ]
    print(
        "| contender | ops/s | CPU us/op: workers | mysqld | cache server | total | 2 cores / total | reads with no SQL |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    try:
        for _ in range(rounds):
            for label, flavor, contender, url, server in setups:
                r = run(flavor, contender, url, server)
                cpu = r["us_per_op"]
                print(
                    f"| {label} | {r['ops_per_s']:,.0f} | {cpu['workers']:.0f} | {cpu['mysqld']:.0f} | "
                    f"{cpu['cache']:.0f} | {r['total']:.0f} | {2e6 / r['total']:,.0f} | {r['sql_free_reads']:.1%} |",
                    flush=True,
                )
    finally:
        memcached.kill()
        redis.kill()


if __name__ == "__main__":
    main()
