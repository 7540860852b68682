"""save() near its floor, and the 95/5 mix with refill after write: on MariaDB
and PostgreSQL, with memcached (pymemcache) and Redis.

A save with invalidation cannot cost less than a plain save plus one cache
round trip, plus, for a row with a container keyed by a non-pk column, the
read of that column and the transaction that holds the row from the read to
the write. The ORM process times those floors (bench/contenders.py,
``ORM.save_pk_floor`` / ``ORM.save_floor``) in the same interleaved rounds as
the plain saves and cachelayer's, so every ratio comes from one run:

- pk-keyed: ``bench.items.Counter``, whose one container is keyed by the pk;
- keyed by a non-pk column: ``bench.items.Item``, with containers by pk and by
  the unique ``email`` (the suite's ``save`` workload).

Then the mix of bench/suite.py (4 processes, Zipf s=1.1) with every container
under a policy with ``refill_after_write`` off, then on.

    .venv/bin/python -m bench.save_floor [--quick] [--databases URL,URL] [--backends memcached,redis]
        [--mix-only | --saves-only]

Private memcached and Redis servers on the ports given by BENCH_PORTS
(default: free ones); each database is created when missing and loaded by
``bench.worker setup``. Prints Markdown tables; writes
bench-output/save_floor.json. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from bench.suite import QUICK, Backend, Plan, forget_pools
from demo_project.env import database_from_url
from tests.faults.servers import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
DATABASES = (
    "mysql://cachelayer:cachelayer@127.0.0.1:3306/cachelayer_bench,"
    "postgresql://cachelayer:cachelayer@127.0.0.1:5432/cachelayer_bench"
)
FLOOR = "ORM floor (save + 1 round trip)"
FLOOR_KEYED = "ORM floor (transaction: old-key read + save, + 1 round trip)"
PK_PLAIN, PK_CACHELAYER = "ORM plain save (pk-keyed)", "cachelayer save (pk-keyed)"


def saves(backend: Backend, plan: Plan) -> dict:
    """Median microseconds per save of every variant, timed in the same rounds."""
    extra = [
        (FLOOR_KEYED, "ORM", "save_floor"),
        (PK_PLAIN, "ORM", "save_pk"),
        (PK_CACHELAYER, "cachelayer", "save_pk"),
        (FLOOR, "ORM", "save_pk_floor"),
    ]
    timed = backend.timed("save", plan.save_ops, plan.rounds, extra=extra)
    return {
        "us": timed,
        "pk_to_floor": timed[PK_CACHELAYER] / timed[FLOOR],
        "pk_to_plain": timed[PK_CACHELAYER] / timed[PK_PLAIN],
        "keyed_to_floor": timed["cachelayer"] / timed[FLOOR_KEYED],
        "keyed_to_plain": timed["cachelayer"] / timed["ORM"],
    }


def run_backend(name: str, env: dict, plan: Plan, profile_ops: int, mix_only: bool, saves_only: bool) -> dict:
    """The saves (refill off), their profile, the mix with refill off and on (each from a
    cold and from a warm cache), and the saves with refill on."""
    backend = Backend(name, env, ["plain", "cachelayer"])
    cachelayer = backend.by_contender["cachelayer"]
    results: dict = {}
    try:
        for on in (False, True):
            suffix = "_refill" if on else ""
            cachelayer.ask("refill", on=on)  # (a policy edit outdates every payload of the container)
            if not mix_only and not on:
                results["save"] = saves(backend, plan)
                results["profile"] = {
                    workload: cachelayer.ask("profile_save", workload=workload, ops=profile_ops)["text"]
                    for workload in ("save", "save_pk")
                }
            if not mix_only and not saves_only:
                results[f"mix{suffix}"] = backend.mix(plan)  # from the cold cache the edit left
            if not saves_only:
                cachelayer.ask("warm_all")
                results[f"mix_warm{suffix}"] = backend.mix(plan)
            if not mix_only and on:
                results["save_refill"] = saves(backend, plan)
        return results
    finally:
        cachelayer.ask("refill", on=False)
        backend.close()


def create_database(url: str) -> None:
    setting = database_from_url(url)
    name, host, port = setting["NAME"], setting["HOST"], int(setting["PORT"])
    if setting["ENGINE"].endswith("mysql"):
        import MySQLdb

        connection = MySQLdb.connect(host=host, port=port, user=setting["USER"], passwd=setting["PASSWORD"])
        connection.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
        connection.close()
        return
    import psycopg

    with psycopg.connect(
        host=host, port=port, user=setting["USER"], password=setting["PASSWORD"], dbname="postgres", autocommit=True
    ) as connection:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')


def database_label(url: str) -> str:
    return "MariaDB" if database_from_url(url)["ENGINE"].endswith("mysql") else "PostgreSQL"


def render(results: dict) -> str:
    lines = [
        "| database, cache | plain save | floor | cachelayer | to floor | to plain "
        "| keyed: plain save | floor | cachelayer | to floor | to plain |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, result in results.items():
        for variant, save in (("", result.get("save")), (", refill on", result.get("save_refill"))):
            if save is None:
                continue
            us = save["us"]
            lines.append(
                f"| {label}{variant} | {us[PK_PLAIN]:.0f} us | {us[FLOOR]:.0f} us | {us[PK_CACHELAYER]:.0f} us "
                f"| {save['pk_to_floor']:.2f}x | {save['pk_to_plain']:.2f}x | {us['ORM']:.0f} us "
                f"| {us[FLOOR_KEYED]:.0f} us | {us['cachelayer']:.0f} us | {save['keyed_to_floor']:.2f}x "
                f"| {save['keyed_to_plain']:.2f}x |"
            )
    if not any("mix_warm" in result for result in results.values()):
        return "\n".join(lines)  # --saves-only
    lines += [
        "",
        "| database, cache, mix | refill off: ORM ops/s | cachelayer ops/s (x ORM) | reads with no SQL "
        "| refill on: ORM ops/s | cachelayer ops/s (x ORM) | reads with no SQL |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, result in results.items():
        for start, mix in (("cold cache", "mix"), ("warm cache", "mix_warm")):
            if mix not in result:
                continue
            cells = []
            for mixed in (result[mix], result[f"{mix}_refill"]):
                orm, ours = mixed["ORM"]["ops_per_s"], mixed["cachelayer"]
                cells.append(
                    f"{orm:,.0f} | {ours['ops_per_s']:,.0f} ({ours['ops_per_s'] / orm:.2f}x) | {ours['hit_ratio']:.1%}"
                )
            lines.append(f"| {label}, {start} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few ops of everything (a smoke test, not numbers)")
    parser.add_argument("--databases", default=os.environ.get("BENCH_DATABASES", DATABASES))
    parser.add_argument("--backends", default="memcached,redis")
    parser.add_argument("--profile-ops", type=int, default=200)
    parser.add_argument("--mix-only", action="store_true", help="only the mixes from a warm cache")
    parser.add_argument("--saves-only", action="store_true", help="only the saves, refill off and on")
    parser.add_argument("--output", default=str(ROOT / "bench-output"))
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    ports = [int(p) for p in os.environ.get("BENCH_PORTS", "").split(",") if p]
    memcached = ServerProcess("memcached", ports[0] if ports else None).start()
    redis = ServerProcess("redis", ports[1] if len(ports) > 1 else None).start()
    caches = {"memcached": f"memcached://{memcached.location}", "redis": f"redis://127.0.0.1:{redis.port}/0"}
    base = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "bench.suite_settings"}
    results = {}
    try:
        for url in args.databases.split(","):
            create_database(url)
            env = {**base, "CACHELAYER_DB": url, "BENCH_FLAVOR": "cachelayer"}
            subprocess.run([sys.executable, "-m", "bench.worker", "setup"], cwd=ROOT, env=env, check=True)
            for cache in args.backends.split(","):
                label = f"{database_label(url)}, {cache}"
                print(f"-- {label}", flush=True)
                backend_env = {**env, "CACHELAYER_CACHE": caches[cache]}
                backend_env.pop("BENCH_FLAVOR")
                forget_pools(backend_env)
                results[label] = run_backend(label, backend_env, plan, args.profile_ops, args.mix_only, args.saves_only)
    finally:
        memcached.kill()
        redis.kill()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "save_floor.json").write_text(json.dumps({"plan": plan.__dict__, "results": results}, indent=2))
    print(render(results))


if __name__ == "__main__":
    main()
