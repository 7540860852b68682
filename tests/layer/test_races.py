"""The stale-set race, forced: a reader paused between its database read and
its fill while a writer commits. The stale fill must never be served."""

import threading

import pytest
from django.db import connection

from cachelayer.engine import versions
from tests.testapp.models import Item, Slugged


@pytest.fixture
def paused_reader(monkeypatch):
    """Make the next cachelayer database read wait, after reading, until released."""
    read_done, release = threading.Event(), threading.Event()
    real = versions.query_rows

    def paused(*args, **kwargs):
        rows = real(*args, **kwargs)
        read_done.set()
        assert release.wait(10)
        return rows

    monkeypatch.setattr(versions, "query_rows", paused)

    def start(model, key):
        result = {}

        def read():
            try:
                result["value"] = model.cached.get(key).value
            except model.DoesNotExist:
                result["value"] = None
            finally:
                connection.close()

        thread = threading.Thread(target=read)
        thread.start()
        assert read_done.wait(10)
        monkeypatch.setattr(versions, "query_rows", real)
        return thread, release, result

    return start


def test_stale_fill_is_never_served(paused_reader):
    item = Item.objects.create(value=1)
    thread, release, result = paused_reader(Item, item.pk)
    item.value = 2
    item.save()  # commits and bumps the version while the reader holds value 1
    release.set()
    thread.join(10)
    assert result["value"] == 1  # the reader itself saw the old row...
    assert Item.cached.get(item.pk).value == 2  # ...but its fill is never served
    assert Item.cached.get(item.pk).value == 2


def test_negative_entry_racing_an_insert_is_never_served(paused_reader):
    thread, release, result = paused_reader(Slugged, "late")
    Slugged.objects.create(slug="late", value=7)
    release.set()
    thread.join(10)
    assert result["value"] is None
    assert Slugged.cached.get("late").value == 7
