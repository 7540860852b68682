"""What a project's own code does around cachelayer's receivers: a search indexer
or webhook connected ahead of them (``@receiver`` in a models.py runs before any
``AppConfig.ready()``) that raises after the write."""

import contextlib


class Indexer(Exception):
    """What a project's search indexer or webhook raises."""


def raise_indexer(**kwargs):
    raise Indexer("the project's receiver failed")


@contextlib.contextmanager
def receiver_ahead(signal, sender):
    """Connect ``raise_indexer`` to ``signal`` for ``sender`` AHEAD of cachelayer's receivers.

    ``Signal.receivers`` is Django's list in call order (tests only: pinned in
    tests/test_django_internals.py)."""
    signal.connect(raise_indexer, sender=sender, weak=False, dispatch_uid="project.indexer")
    with signal.lock:
        signal.receivers.insert(0, signal.receivers.pop())
        signal.sender_receivers_cache.clear()
    try:
        yield
    finally:
        signal.disconnect(sender=sender, dispatch_uid="project.indexer")
