"""One benchmark process (one flavor: bench/suite_settings.py), driven by bench/suite.py.

    python -m bench.worker setup   migrate and load the rows
    python -m bench.worker serve   answer commands, one JSON object per line
    python -m bench.worker mix C   run the read-mostly mix with contender C

``serve`` times calls in this process and returns microseconds per call;
the suite interleaves the processes round by round, so drift hits every
contender alike. Round trips are counted at the socket (``sendall`` calls:
one per request, whatever the client) and SQL queries with Django's
execute_wrapper, so a peer is counted the same way as cachelayer.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from contextlib import contextmanager

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.suite_settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.core.signals import request_finished, request_started  # noqa: E402
from django.db import connection  # noqa: E402

from bench import data  # noqa: E402
from bench.contenders import for_this_process  # noqa: E402


def _bump(item) -> None:
    item.score += 1


class Workloads:
    """What each workload calls, and with which arguments, for one contender."""

    def __init__(self, keys: data.Keys):
        self.keys = keys
        self.items: dict[str, list] = {}  # contender -> instances the write workload saves
        self.fresh: dict[str, object] = {}  # contender -> its stream of never-repeated random batches

    def calls(self, contender, workload: str):
        """Return ``(function, arguments)``, or None when the contender cannot do it."""
        keys = self.keys
        if workload == "pk_hit":
            return contender.get, keys.hot
        if workload == "unique_hit":
            return getattr(contender, "get_by_email", None), keys.hot_emails
        if workload == "get_many":
            return getattr(contender, "get_many", None), keys.batches
        if workload == "random_many":  # a fresh random 100 keys each call: per-query caches miss
            function = getattr(contender, "get_many", None)
            stream = self.fresh.setdefault(contender.name, iter(keys.random_batches))
            return (function and (lambda _: function(next(stream)))), range(3)
        if workload == "singles":  # the same 100 keys as get_many, one call each
            return (lambda batch: [contender.get(pk) for pk in batch]), keys.batches
        if workload == "post_comments":  # the 20 comments of a post, as a list of instances
            return getattr(contender, "comments", None), keys.posts
        if workload == "save":
            if not hasattr(contender, "get_by_email"):
                return None, ()  # the raw cache has no rows to save
            if contender.name not in self.items:
                self.items[contender.name] = [contender.load(pk) for pk in keys.writes]

            def save(item):
                _bump(item)
                contender.save(item)

            return save, self.items[contender.name]
        if workload in ("save_floor", "save_pk", "save_pk_floor"):  # bench/save_floor.py
            return self.save_calls(contender, workload)
        raise ValueError(f"unknown workload {workload!r}")

    def save_calls(self, contender, workload: str):
        """The save floor's workloads: a pk-keyed save, and the floors (ORM only)."""
        method = {"save_floor": "save_floor", "save_pk": "save", "save_pk_floor": "save_pk_floor"}[workload]
        function = getattr(contender, method, None)
        if function is None or not hasattr(contender, "counters"):
            return None, ()
        if workload == "save_floor":
            _, items = self.calls(contender, "save")
        else:
            items = self.items.setdefault(f"{contender.name} counters", contender.counters())

        def save(row):
            _bump(row)
            function(row)

        return save, items


def per_request(function):
    """Send request_started / request_finished around each call, as a WSGI server does."""

    def call(argument):
        request_started.send(sender=None, environ={})
        try:
            return function(argument)
        finally:
            request_finished.send(sender=None)

    return call


@contextmanager
def counting():
    """Count cache round trips and SQL queries of this thread.

    A round trip is a request written to a socket (one or more ``sendall``
    calls: redis-py writes a long command in chunks) before its answer is
    read; ``waits`` counts the groups of requests sent before any answer is
    read (a pool asked in parallel waits once). The database client's
    sockets, and pylibmc's, are C-level and not seen here.
    """
    counts = {"round_trips": 0, "queries": 0, "waits": 0}
    sending: set[int] = set()  # sockets whose last call was a send
    reading = [True]  # the last socket call was a receive: the next send starts a new wait
    real = {name: getattr(socket.socket, name) for name in ("sendall", "recv", "recv_into")}

    def sendall(sock, *args, **kwargs):
        if sock.fileno() not in sending:
            sending.add(sock.fileno())
            counts["round_trips"] += 1
            if reading[0]:  # requests sent together before any answer is read wait once
                counts["waits"] += 1
                reading[0] = False
        return real["sendall"](sock, *args, **kwargs)

    def receiver(name):
        def receive(sock, *args, **kwargs):
            sending.discard(sock.fileno())
            reading[0] = True
            return real[name](sock, *args, **kwargs)

        return receive

    def execute(run, sql, params, many, context):
        counts["queries"] += 1
        return run(sql, params, many, context)

    socket.socket.sendall = sendall
    socket.socket.recv, socket.socket.recv_into = receiver("recv"), receiver("recv_into")
    try:
        with connection.execute_wrapper(execute):
            yield counts
    finally:
        for name, method in real.items():
            setattr(socket.socket, name, method)


class Server:
    def __init__(self):
        self.contenders = {c.name: c for c in for_this_process()}
        self.keys = data.keys()
        self.workloads = Workloads(self.keys)

    def prepare(self) -> dict:
        for contender in self.contenders.values():
            if hasattr(contender, "prepare"):
                contender.prepare(self.keys.hot)
        return {"contenders": list(self.contenders)}

    def warm(self, workload: str, contender: str) -> dict:
        function, arguments = self.workloads.calls(self.contenders[contender], workload)
        if function is None:
            return {"skip": True}
        for argument in arguments:
            function(argument)
        return {}

    def time(self, workload: str, contender: str, ops: int, request: bool = False) -> dict:
        function, arguments = self.workloads.calls(self.contenders[contender], workload)
        if function is None:
            return {"skip": True}
        if request:
            function = per_request(function)
        sequence = [arguments[i % len(arguments)] for i in range(ops)]
        start = time.perf_counter()
        for argument in sequence:
            function(argument)
        return {"us": (time.perf_counter() - start) / ops * 1e6}

    def count(self, workload: str, contender: str) -> dict:
        function, arguments = self.workloads.calls(self.contenders[contender], workload)
        if function is None:
            return {"skip": True}
        function(arguments[0])  # connections open, hits warm
        with counting() as counts:
            function(arguments[0])
        return counts

    def profile(self, ops: int) -> dict:
        """cProfile of ``ops`` cachelayer pk hits: the functions that cost most."""
        return {"text": profiled(self.contenders["cachelayer"].get, self.keys.hot, ops, "tottime", 20)}

    def profile_save(self, workload: str, ops: int) -> dict:
        """cProfile of ``ops`` cachelayer saves of ``workload``: where a save's time goes."""
        save, rows = self.workloads.calls(self.contenders["cachelayer"], workload)
        return {"text": profiled(save, rows, ops, "cumulative", 40)}

    def warm_all(self) -> dict:
        """Read every row through cachelayer once, so a mix starts with a warm cache."""
        cachelayer, pks = self.contenders["cachelayer"], self.keys.all
        for start in range(0, len(pks), 1000):
            cachelayer.get_many(pks[start : start + 1000])
        return {}

    def refill(self, on: bool) -> dict:
        self.contenders["cachelayer"].refill(on)
        return {}

    def stampede(self, contender: str, round: int, threads: int) -> dict:
        """``threads`` concurrent first reads of one outdated key: SQL queries issued."""
        chosen = self.contenders[contender]
        if not hasattr(chosen, "outdate"):
            return {"skip": True}
        pk = self.keys.stampede[round % len(self.keys.stampede)]
        chosen.get(pk)
        chosen.outdate(pk)
        barrier = threading.Barrier(threads)
        lock = threading.Lock()
        totals = {"queries": 0, "errors": 0}

        def execute(run, sql, params, many, context):
            with lock:
                totals["queries"] += 1
            return run(sql, params, many, context)

        def reader():
            try:
                connection.ensure_connection()
                with connection.execute_wrapper(execute):
                    barrier.wait(timeout=30)
                    chosen.get(pk)
            except Exception:
                with lock:
                    totals["errors"] += 1
            finally:
                connection.close()

        workers = [threading.Thread(target=reader) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        return totals


def profiled(function, arguments: list, ops: int, order: str, lines: int) -> str:
    """Return cProfile's table of ``ops`` calls of ``function`` over ``arguments`` in turn."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(ops):
        function(arguments[i % len(arguments)])
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(lines)
    return text.getvalue()


def serve() -> None:
    server = Server()
    for line in sys.stdin:
        request = json.loads(line)
        command = request.pop("cmd")
        if command == "quit":
            break
        try:
            reply = getattr(server, command)(**request)
        except Exception as exc:  # reported to the suite, which stops with it
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)


def mix(contender_name: str, seed: int, warmup: float, seconds: float, max_ops: int, write_share: float) -> None:
    """Read-mostly mix over Zipf-distributed keys; waits for "go" on stdin, prints totals."""
    contender = {c.name: c for c in for_this_process()}[contender_name]
    keys = data.keys()
    draws = data.zipf_draws(keys.all, max_ops, seed)
    writes = set(range(0, max_ops, round(1 / write_share)))
    counts = {"queries": 0}

    def execute(run, sql, params, many, context):
        counts["queries"] += 1
        return run(sql, params, many, context)

    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()
    totals = {"reads": 0, "writes": 0, "sql_free_reads": 0}
    with connection.execute_wrapper(execute):
        start = time.perf_counter()
        measure_from, stop = start + warmup, start + warmup + seconds
        measuring, now = False, start
        for op, pk in enumerate(draws):
            now = time.perf_counter() if op % 16 == 0 else now
            if now >= stop:
                break
            if not measuring and now >= measure_from:
                measuring, began = True, now
                totals = dict.fromkeys(totals, 0)
            if op in writes:
                item = contender.load(pk)
                _bump(item)
                contender.save(item)
                totals["writes"] += 1
            else:
                before = counts["queries"]
                contender.get(pk)
                totals["reads"] += 1
                totals["sql_free_reads"] += counts["queries"] == before
        elapsed = time.perf_counter() - began if measuring else 0.0
    print(json.dumps({**totals, "seconds": elapsed}), flush=True)


def setup() -> None:
    call_command("migrate", verbosity=0)
    data.create_rows()
    data.create_comments()
    data.create_counters()


def forget_pools() -> None:
    """Each backend of the suite is a new deployment after every process of the last one
    stopped: forget their server lists now instead of waiting POOL_MEMBERSHIP_TTL for them
    to expire (until then a key the lists route apart is read from the database)."""
    from cachelayer.models import PoolMembership

    PoolMembership.objects.all().delete()


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup()
    elif sys.argv[1] == "forget-pools":
        forget_pools()
    elif sys.argv[1] == "serve":
        serve()
    else:
        name, seed, warmup, seconds, max_ops, share = sys.argv[2:8]
        mix(name, int(seed), float(warmup), float(seconds), int(max_ops), float(share))
