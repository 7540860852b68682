"""Concurrency helpers for the race and stampede tests: many readers at once,
counted database reads, and a database read paused before its fill."""

from __future__ import annotations

import threading

from django.db import connection


def count_calls(monkeypatch, module, name: str) -> list:
    """Replace ``module.name`` with a wrapper that appends to the returned list on each call."""
    calls, lock, real = [], threading.Lock(), getattr(module, name)

    def counting(*args, **kwargs):
        with lock:
            calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


def all_at_once(threads: int, read) -> tuple[list, list]:
    """Run ``read()`` in ``threads`` threads released together; return (results, errors)."""
    start, results, errors = threading.Barrier(threads), [], []

    def run():
        try:
            start.wait(10)
            results.append(read())
        except Exception as exc:  # reported by the caller, never swallowed
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    return results, errors


def paused_after(monkeypatch, module, name: str, read):
    """Start ``read()`` in a thread whose next call of ``module.name`` waits, after
    reading, until released. Returns (thread, release, result dict: "value")."""
    read_done, release, result = threading.Event(), threading.Event(), {}
    real = getattr(module, name)

    def paused(*args, **kwargs):
        rows = real(*args, **kwargs)
        read_done.set()
        assert release.wait(10)
        return rows

    monkeypatch.setattr(module, name, paused)

    def run():
        try:
            result["value"] = read()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    assert read_done.wait(10)
    monkeypatch.setattr(module, name, real)
    return thread, release, result
