"""The stale-set race, forced: a reader paused between its database read and
its fill while a writer commits. The stale fill must never be served."""

import pytest

from cachelayer.engine import versions
from tests.layer.threads import paused_after
from tests.testapp.models import Item, Slugged


@pytest.fixture
def paused_reader(monkeypatch):
    """Make the next cachelayer database read wait, after reading, until released."""

    def start(model, key):
        def read():
            try:
                return model.cached.get(key).value
            except model.DoesNotExist:
                return None

        return paused_after(monkeypatch, versions, "query_rows", read)

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
