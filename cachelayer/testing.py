"""Helpers for a project's own tests: cachelayer inside Django's ``TestCase``.

``TestCase`` runs each test inside ``atomic`` blocks that are rolled back, never
committed. cachelayer's transaction rules then hold for the whole test: what
the test wrote bypasses the cache and nothing is filled on SQLite, so a second
read is never a hit (``assertNumQueries(0)`` fails), and rows the test cached
would outlive its rollback. ``cache_as_committed`` counts the blocks open when
it starts as committed, for the cache only: writes invalidate at once, reads
fill, an inner ``atomic`` the test opens behaves as a real transaction (its
writes bypass the cache until it ends; a rolled-back one leaves the cache
untouched), and it starts every test on an empty key space (each container's
generation bumped), so nothing cached by an earlier test is served. The outbox
is replayed on the test's own connection first: a replay on a connection of
its own (as outside tests) would wait for the test transaction's locks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections

from cachelayer.engine import outbox, transactions
from cachelayer.engine.invalidation import invalidate_container
from cachelayer.engine.registry import registry

__all__ = ["CachelayerTestMixin", "cache_as_committed"]


@contextmanager
def cache_as_committed() -> Iterator[None]:
    """Treat the transactions open now on every database as committed, for the cache.

    With pytest-django: ``with cache_as_committed(): yield`` in a fixture that
    takes ``db``. Nested uses restore the previous state on exit.
    """
    saved = dict(transactions.committed_depths)
    try:
        for alias in connections:
            transactions.committed_depths[alias] = transactions.depth(connections[alias])
        registry.load()
        definitions = registry.definitions()
        for adapter in {definition.adapter for definition in definitions}:
            outbox.replay_in_this_connection(adapter)  # every server starts dirty until a replay
        for definition in definitions:
            invalidate_container(definition.db_alias(), definition)
        yield
    finally:
        transactions.committed_depths.clear()
        transactions.committed_depths.update(saved)


class CachelayerTestMixin:
    """Mix into ``django.test.TestCase`` (before it) so that cachelayer treats each
    test's transaction as committed: ``class T(CachelayerTestMixin, TestCase)``."""

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]  # a mixin: TestCase is next in the MRO
        context = cache_as_committed()
        context.__enter__()
        self.addCleanup(context.__exit__, None, None, None)  # type: ignore[attr-defined]  # TestCase's
