"""The benchmark suite: cachelayer vs the raw ORM, the raw cache and the peers.

Run it with ``bash bench/run.sh`` (README, "Performance"): MariaDB, private
memcached and Redis servers on free loopback ports, 10k rows. Each flavor
(bench/suite_settings.py) is its own long-lived process; every workload is
warmed up first, then timed in rounds that take turns between the
processes (the order rotates each round), and the table shows medians and
ratios from this one run. Results go to bench-output/ (JSON and Markdown).

    python -m bench.suite [--quick] [--backends memcached,redis,pool]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import report
from tests.faults.cluster import Cluster
from tests.faults.servers import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
PEERS = {"cacheops": "cacheops", "cachalot": "cachalot"}  # flavor -> module it needs
DEFAULT_DB = "mysql://cachelayer:cachelayer@127.0.0.1:3306/cachelayer_bench"
STAMPEDE_ONLY = {"cacheops lock=True"}  # reads like cacheops; differs only on a miss
NOT_IN_MIX = {"raw cache.get"}  # holds no rows to write
SINGLES = "cachelayer, 100 single hits"  # timed in the get_many rounds


@dataclass
class Plan:
    """How much of everything one run does."""

    # Many short rounds: this kind of shared machine has slow spells of a
    # second or two, which a median of many short samples steps over.
    rounds: int = 15
    ops: int = 500  # single-key calls per timed sample
    many_ops: int = 10  # get_many(100) calls per sample
    save_ops: int = 100
    stampede_rounds: int = 5
    stampede_threads: int = 64
    mix_rounds: int = 3
    mix_processes: int = 4
    mix_warmup: float = 1.0
    mix_seconds: float = 4.0
    mix_max_ops: int = 200_000
    write_share: float = 0.05


QUICK = Plan(
    rounds=2,
    ops=100,
    many_ops=4,
    save_ops=20,
    stampede_rounds=1,
    stampede_threads=16,
    mix_rounds=1,
    mix_processes=2,
    mix_warmup=0.3,
    mix_seconds=1.0,
    mix_max_ops=20_000,
)


class Worker:
    """A ``bench.worker serve`` process of one flavor."""

    def __init__(self, flavor: str, env: dict):
        self.flavor = flavor
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", "serve"],
            cwd=ROOT,
            env={**env, "BENCH_FLAVOR": flavor},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, cmd: str, **arguments) -> dict:
        self.process.stdin.write(json.dumps({"cmd": cmd, **arguments}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.flavor} worker exited ({self.process.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.flavor} worker, {cmd} {arguments}: {reply['error']}")
        return reply

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write('{"cmd": "quit"}\n')
            self.process.stdin.close()
            self.process.wait(timeout=30)


class Backend:
    """One cache setup: its workers, and the contenders they hold."""

    def __init__(self, name: str, env: dict, flavors: list[str]):
        self.name, self.env = name, env
        self.workers = [Worker(flavor, env) for flavor in flavors]
        self.by_contender = {}
        for worker in self.workers:
            for contender in worker.ask("prepare")["contenders"]:
                self.by_contender[contender] = worker

    def close(self) -> None:
        for worker in self.workers:
            worker.close()

    def _order(self, runs: list, round_: int) -> list:
        shift = round_ % len(runs)
        return runs[shift:] + runs[:shift]

    def timed(self, workload: str, ops: int, rounds: int, request: bool = False, extra=()) -> dict:
        """Median microseconds per call of every contender that can run ``workload``.

        ``extra``: more ``(label, contender, workload)`` runs timed in the same
        rounds, for ratios between workloads that drift cannot skew.
        """
        runs = [(n, n, workload) for n in self.by_contender if n not in STAMPEDE_ONLY] + list(extra)
        runs = [r for r in runs if "skip" not in self.by_contender[r[1]].ask("warm", workload=r[2], contender=r[1])]
        samples = {label: [] for label, _, _ in runs}
        for round_ in range(rounds):
            for label, name, work in self._order(runs, round_):
                reply = self.by_contender[name].ask("time", workload=work, contender=name, ops=ops, request=request)
                samples[label].append(reply["us"])
        return {label: statistics.median(values) for label, values in samples.items()}

    def counted(self, workload: str) -> dict:
        """Cache round trips and SQL queries of one warm call, per contender."""
        found = {}
        for name, worker in self.by_contender.items():
            if name not in STAMPEDE_ONLY:
                reply = worker.ask("count", workload=workload, contender=name)
                if "skip" not in reply:
                    found[name] = reply
        return found

    def stampede(self, plan: Plan) -> dict:
        """SQL queries per round of ``threads`` concurrent misses of one key (median, max)."""
        samples: dict[str, list] = {}
        for round_ in range(plan.stampede_rounds):
            for name in self._order(list(self.by_contender), round_):
                reply = self.by_contender[name].ask(
                    "stampede", contender=name, round=round_, threads=plan.stampede_threads
                )
                if "skip" not in reply:
                    samples.setdefault(name, []).append(reply)
        return {
            name: {
                "queries": statistics.median(r["queries"] for r in replies),
                "max_queries": max(r["queries"] for r in replies),
                "errors": sum(r["errors"] for r in replies),
            }
            for name, replies in samples.items()
        }

    def mix(self, plan: Plan) -> dict:
        """Throughput (ops/s over all processes) and SQL-free read share of the 95/5 mix."""
        names = [n for n in self.by_contender if n not in NOT_IN_MIX | STAMPEDE_ONLY]
        rounds: dict[str, list] = {name: [] for name in names}
        for round_ in range(plan.mix_rounds):
            for name in self._order(names, round_):
                rounds[name].append(self._mix_round(name, round_, plan))
        return {
            name: {
                "ops_per_s": statistics.median(r["ops_per_s"] for r in results),
                "hit_ratio": statistics.median(r["hit_ratio"] for r in results),
            }
            for name, results in rounds.items()
        }

    def _mix_round(self, name: str, round_: int, plan: Plan) -> dict:
        env = {**self.env, "BENCH_FLAVOR": self.by_contender[name].flavor}
        arguments = [plan.mix_warmup, plan.mix_seconds, plan.mix_max_ops, plan.write_share]
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.worker", "mix", name, str(1000 * round_ + p), *map(str, arguments)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for p in range(plan.mix_processes)
        ]
        for process in processes:
            if not process.stdout.readline():
                raise RuntimeError(f"a mix process of {name} exited ({process.wait()})")
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        results = []
        for process in processes:
            results.append(json.loads(process.stdout.readline()))
            process.wait(timeout=60)
        reads = sum(r["reads"] for r in results)
        return {
            "ops_per_s": sum((r["reads"] + r["writes"]) / r["seconds"] for r in results if r["seconds"]),
            "hit_ratio": sum(r["sql_free_reads"] for r in results) / reads if reads else 0.0,
        }


def run_backend(name: str, env: dict, flavors: list[str], plan: Plan, pool: bool) -> dict:
    backend = Backend(name, env, flavors)
    try:
        results = {
            "pk_hit": backend.timed("pk_hit", plan.ops, plan.rounds),
            "profile": backend.by_contender["cachelayer"].ask("profile", ops=plan.ops)["text"],  # while all hit
            "get_many": backend.timed(
                "get_many", plan.many_ops, plan.rounds, extra=[(SINGLES, "cachelayer", "singles")]
            ),
            "random_many": backend.timed("random_many", plan.many_ops, plan.rounds),
            "counts": {w: backend.counted(w) for w in ("pk_hit", "get_many")},
        }
        results["singles"] = {"cachelayer": results["get_many"].pop(SINGLES)}
        if pool:
            return results
        results.update(
            unique_hit=backend.timed("unique_hit", plan.ops, plan.rounds),
            post_comments=backend.timed("post_comments", plan.ops, plan.rounds),
            per_request=backend.timed("pk_hit", plan.ops, plan.rounds, request=True),
            save=backend.timed("save", plan.save_ops, plan.rounds),
            stampede=backend.stampede(plan),
            mix=backend.mix(plan),
        )
        results["counts"]["unique_hit"] = backend.counted("unique_hit")
        results["counts"]["post_comments"] = backend.counted("post_comments")
        return results
    finally:
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few ops of everything (a smoke test, not numbers)")
    parser.add_argument("--backends", default="memcached,pylibmc,redis,pool")
    parser.add_argument("--output", default=str(ROOT / "bench-output"))
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)

    missing = [flavor for flavor, module in PEERS.items() if importlib.util.find_spec(module) is None]
    if missing:
        print(f"-- not installed, left out: {', '.join(missing)} (pip install -r bench/requirements.txt)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "bench.suite_settings"}
    env.setdefault("CACHELAYER_DB", DEFAULT_DB)
    memcached = [ServerProcess("memcached").start() for _ in range(3)]
    redis = ServerProcess("redis").start()
    try:
        create_database(env["CACHELAYER_DB"])
        subprocess.run(
            [sys.executable, "-m", "bench.worker", "setup"],
            cwd=ROOT,
            env={**env, "BENCH_FLAVOR": "cachelayer"},
            check=True,
        )
        setups = {
            "memcached": (f"memcached://{memcached[0].location}", ["plain", "cachelayer", "cachalot"]),
            "pylibmc": (f"pylibmc://{memcached[0].location}", ["plain", "cachelayer", "cachalot"]),
            "redis": (f"redis://127.0.0.1:{redis.port}/0", ["plain", "cachelayer", "cacheops", "cachalot"]),
            "pool": (
                "memcached://" + ",".join(server.location for server in memcached),
                ["plain", "cachelayer", "cachalot"],
            ),
        }
        results = {"plan": plan.__dict__, "machine": machine(env["CACHELAYER_DB"]), "backends": {}}
        for name in args.backends.split(","):
            url, flavors = setups[name]
            flavors = [f for f in flavors if f not in missing]
            print(f"-- {name}: {url} ({', '.join(flavors)})", flush=True)
            backend_env = {**env, "CACHELAYER_CACHE": url, "BENCH_REDIS": f"redis://127.0.0.1:{redis.port}/1"}
            forget_pools(backend_env)
            results["backends"][name] = run_backend(name, backend_env, flavors, plan, pool=name == "pool")
        if "redis" in args.backends.split(","):
            results["near_cache"] = near_cache(redis.port, output, writes=20 if args.quick else 300)
            results["cluster"] = cluster_hit(output)
            results["cluster_mix"] = cluster_mix(env, plan)
    finally:
        for server in [*memcached, redis]:
            server.kill()
    (output / "results.json").write_text(json.dumps(results, indent=2))
    markdown = report.render(results)
    (output / "results.md").write_text(markdown)
    print(markdown)


def near_cache(port: int, output: Path, writes: int) -> dict:
    """Run bench/near_cache.py (the L1 hit, the invalidation delay across processes) on the private Redis."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "CACHELAYER_TEST_REDIS": f"redis://127.0.0.1:{port}/2",
        "CACHELAYER_DB": f"sqlite:///{output / 'near_cache.sqlite3'}",
    }
    print("-- near-cache: bench/near_cache.py", flush=True)
    command = [sys.executable, "bench/near_cache.py", "--writes", str(writes), "--switch-interval", "0.001"]
    command += ["--out", str(output / "near_cache.json")]
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    return json.loads((output / "near_cache.json").read_text())


def cluster_hit(output: Path) -> dict:
    """Run bench/cluster_hit.py (a 3-master Redis Cluster of its own: hits against a raw RedisCluster)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "CACHELAYER_DB": f"sqlite:///{output / 'cluster_hit.sqlite3'}",
    }
    print("-- Redis Cluster: bench/cluster_hit.py", flush=True)
    command = [sys.executable, "bench/cluster_hit.py", "--out", str(output / "cluster_hit.json")]
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    return json.loads((output / "cluster_hit.json").read_text())


def cluster_mix(env: dict, plan: Plan) -> dict:
    """Run the single Redis's 95/5 mix (``Backend.mix``: the same processes, keys and rows)
    on a 3-master Redis Cluster of its own, started as bench/cluster_hit.py starts one:
    the ORM and cachelayer (no peer has a cluster client). BENCH_CLUSTER_PORTS: its six
    loopback ports (node, bus port, for each master) in place of free ones."""
    ports = [int(port) for port in os.environ.get("BENCH_CLUSTER_PORTS", "").split(",") if port]
    print("-- Redis Cluster: the 95/5 mix", flush=True)
    cluster = Cluster(replicas=0, ports=ports or None).start()
    try:
        nodes = ",".join(url.removeprefix("redis://") for url in cluster.urls)
        backend_env = {**env, "CACHELAYER_CACHE": f"redis-cluster://{nodes}"}
        forget_pools(backend_env)
        backend = Backend("redis cluster", backend_env, ["plain", "cachelayer"])
        try:
            # A new, empty cache: every row read once first, as the single Redis's workloads read them before its mix.
            backend.by_contender["cachelayer"].ask("warm_all")
            return backend.mix(plan)
        finally:
            backend.close()
    finally:
        cluster.stop()


def forget_pools(env: dict) -> None:
    """A new deployment: forget the last one's server lists (bench/worker.py)."""
    command = [sys.executable, "-m", "bench.worker", "forget-pools"]
    subprocess.run(command, cwd=ROOT, env={**env, "BENCH_FLAVOR": "cachelayer"}, check=True)


def machine(database_url: str) -> dict:
    """What the numbers were measured on."""
    import django
    import MySQLdb

    connection = MySQLdb.connect(**_mysql_params(database_url))
    cursor = connection.cursor()
    cursor.execute("SELECT VERSION()")
    (mariadb,) = cursor.fetchone()
    connection.close()
    versions = {}
    for command in (["memcached", "-V"], ["redis-server", "--version"]):
        versions[command[0]] = subprocess.run(command, capture_output=True, text=True).stdout.split("\n")[0]
    return {
        "date": datetime.date.today().isoformat(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "mariadb": mariadb,
        **versions,
    }


def create_database(url: str) -> None:
    import MySQLdb

    connection = MySQLdb.connect(**_mysql_params(url))
    connection.cursor().execute(
        f"CREATE DATABASE IF NOT EXISTS `{_database_setting(url)['NAME']}` CHARACTER SET utf8mb4"
    )
    connection.close()


def _database_setting(url: str) -> dict:
    from demo_project.env import database_from_url

    setting = database_from_url(url)
    if not setting["ENGINE"].endswith("mysql"):
        raise SystemExit(f"CACHELAYER_DB={url!r}: the benchmarks run on MariaDB/MySQL")
    return setting


def _mysql_params(url: str) -> dict:
    setting = _database_setting(url)
    return {
        "host": setting["HOST"],
        "port": int(setting["PORT"]),
        "user": setting["USER"],
        "passwd": setting["PASSWORD"],
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
