"""cache_bench: a memslap-like load generator against a container's repository."""

import itertools
import random
import statistics
import threading
import time

from django.core.management.base import CommandError
from django.db import connections

from cachelayer.api import repository
from cachelayer.cli import ContainerCommand, bounded
from cachelayer.engine import stats
from cachelayer.engine.registry import resolve
from cachelayer.tasks import warming

TESTS = ("get", "set", "mixed")
SET_SHARE = 0.1  # share of sets in --test mixed (memslap's default get:set is 9:1)
MAX_SECONDS = 300.0
MAX_CONCURRENCY = 64


class Worker(threading.Thread):
    """One client: random keys from the working set until the time or the op budget runs out."""

    def __init__(self, repo, items: dict, test: str, deadline: float, taken, ops: int, seed: int):
        super().__init__(daemon=True)
        self.repo, self.items, self.test = repo, items, test
        self.deadline, self.taken, self.ops = deadline, taken, ops
        self.random = random.Random(seed)
        self.latencies: list[float] = []
        self.gets = self.found = 0
        self.error: Exception | None = None

    def run(self):
        keys = list(self.items)
        try:
            while next(self.taken) < self.ops and time.monotonic() < self.deadline:
                key = self.random.choice(keys)
                writes = self.test == "set" or (self.test == "mixed" and self.random.random() < SET_SHARE)
                started = time.perf_counter()
                if writes:
                    item = self.items[key]
                    self.repo.set(key, item.value, flags=item.flags)
                else:
                    self.gets += 1
                    self.found += self.repo.get(key) is not None
                self.latencies.append(time.perf_counter() - started)
        except Exception as exc:  # reported by the command after the run
            self.error = exc
        finally:
            connections.close_all()


class Command(ContainerCommand):
    help = (
        "Load a container through its repository from --concurrency threads for --seconds (or "
        "until --ops operations), over the first --keys rows in key order, like memslap; print "
        "ops/s, the cache hit ratio and latency percentiles. --test set and mixed write each key "
        "back with its current value and flags, through the set policy (rows keep their data; an "
        "expire_time_column is reset)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--container", metavar="NAME", help="container to load (default: the default container)")
        parser.add_argument(
            "--test", choices=TESTS, default="get", help="get (default), set, or mixed (9 gets : 1 set)"
        )
        parser.add_argument(
            "--concurrency", type=bounded(int, 1, MAX_CONCURRENCY), default=4, help="client threads (default 4)"
        )
        parser.add_argument(
            "--seconds", type=bounded(float, 0.01, MAX_SECONDS), default=5.0, help="run time limit (default 5)"
        )
        parser.add_argument(
            "--keys", type=bounded(int, 1, 1_000_000), default=100, help="working set size (default 100)"
        )
        parser.add_argument(
            "--ops", type=bounded(int, 1, 10_000_000), default=1_000_000, help="operation limit (default 1000000)"
        )

    def handle(self, *args, container, test, concurrency, seconds, keys, ops, **options):
        definition = resolve(container)
        repo = repository(definition.name)
        items = repo.get_items(warming.keys_after(definition, None, keys)[1])
        if not items:
            raise CommandError(f"container {definition.name!r} has no rows to read; load some data first")
        before = stats.snapshot().get(definition.name, {})
        taken = itertools.count()
        started = time.monotonic()
        workers = [Worker(repo, items, test, started + seconds, taken, ops, seed) for seed in range(concurrency)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.monotonic() - started
        errors = [w.error for w in workers if w.error]
        if errors:
            raise CommandError(f"{len(errors)} of {concurrency} clients failed; first: {errors[0]!r}")
        after = stats.snapshot().get(definition.name, {})
        self._report(definition.name, test, concurrency, len(items), workers, elapsed, before, after)

    def _report(self, name, test, concurrency, key_count, workers, elapsed, before, after):
        latencies = sorted(latency for w in workers for latency in w.latencies)
        gets = sum(w.gets for w in workers)
        hits = after.get("hits", 0) - before.get("hits", 0)
        misses = after.get("misses", 0) - before.get("misses", 0)
        ratio = f"{hits / (hits + misses):.1%}" if hits + misses else "n/a"
        cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
        write = self.stdout.write
        write(f"container {name}, test {test}, {concurrency} clients, {key_count} keys")
        write(
            f"  {len(latencies)} ops in {elapsed:.2f} s: {len(latencies) / elapsed:.0f} ops/s "
            f"({gets} gets, {len(latencies) - gets} sets)"
        )
        write(
            f"  cache hit ratio {ratio} ({hits} hits, {misses} misses); found {sum(w.found for w in workers)} of {gets} gets"
        )
        if latencies:
            write(
                f"  latency ms: p50 {cuts[49] * 1e3:.3f}  p95 {cuts[94] * 1e3:.3f}  "
                f"p99 {cuts[98] * 1e3:.3f}  max {latencies[-1] * 1e3:.3f}"
            )
