"""The stale-set race, forced: a reader paused between its database read and
its fill while a writer commits. The stale fill must never be served."""

import pytest

from cachelayer.engine import loaders
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

        return paused_after(monkeypatch, loaders, "query_rows", read)

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


def test_a_save_outside_atomic_holds_the_row_from_its_old_key_read_to_its_write(monkeypatch, on_server_database):
    """save() reads the key the row has (pre_save), then writes. Another writer
    must not change that key in between: the saved key would then be one this
    save never outdates, and a reader may have cached it meanwhile."""
    import threading

    from django.db import connection

    from cachelayer.engine import snapshots

    row = Slugged.objects.create(slug="a", value=1)
    mine = Slugged.objects.get(pk=row.pk)
    mine.slug = "c"
    thread, release, _ = paused_after(monkeypatch, snapshots, "read", mine.save)  # has read "a"

    def other_writer():
        try:
            Slugged.objects.filter(pk=row.pk).update(slug="b")
        finally:
            connection.close()

    other = threading.Thread(target=other_writer)
    other.start()
    other.join(timeout=1)  # waits for the save's lock, when there is one
    if not other.is_alive():
        assert Slugged.cached.get("b").value == 1  # a reader caches the intermediate key
    release.set()
    thread.join(10)
    other.join(10)
    final = Slugged.objects.get(pk=row.pk).slug
    for key in "abc":
        try:
            found = Slugged.cached.get(key).pk
        except Slugged.DoesNotExist:
            found = None
        assert found == (row.pk if key == final else None), (key, final)
