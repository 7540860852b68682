"""cachelayer.contrib.recording: per-context recordings of reads and invalidations
(what the debug toolbar panel and the demo page show)."""

import asyncio
import threading

from asgiref.sync import async_to_sync

from cachelayer import signals
from cachelayer.contrib.recording import HIT, INVALIDATED, MISS, Recording
from tests.testapp.models import Item


def kinds(recording):
    return [(event.kind, event.container, event.keys) for event in recording.events]


def test_a_recording_sees_reads_and_invalidations_then_disconnects():
    item = Item.objects.create(value=1)
    with Recording() as recording:
        assert signals.cache_hit.has_listeners(Item)
        Item.cached.get(item.pk)
        Item.cached.get(item.pk)
        item.value = 2
        item.save()
    Item.cached.get(item.pk)  # after the block: not recorded
    key = (str(item.pk),)
    assert kinds(recording) == [
        (MISS, "testapp_item", key),
        (HIT, "testapp_item", key),
        (INVALIDATED, "testapp_item", key),
    ]
    assert (recording.count(HIT), recording.count(MISS), recording.count(INVALIDATED)) == (1, 1, 1)
    assert [event.model for event in recording.events] == ["testapp.Item"] * 3
    assert not signals.cache_hit.has_listeners(Item) and not signals.cache_invalidated.has_listeners(Item)


def test_nested_recordings_both_see_the_inner_events():
    item = Item.objects.create(value=1)
    with Recording() as outer:
        Item.cached.get(item.pk)
        with Recording() as inner:
            Item.cached.get(item.pk)
        assert signals.cache_hit.has_listeners(Item)  # the outer one is still open
    assert [e.kind for e in outer.events] == [MISS, HIT] and [e.kind for e in inner.events] == [HIT]


def test_a_whole_container_invalidation_has_no_keys():
    import cachelayer

    with Recording() as recording:
        cachelayer.invalidate(Item)
    assert kinds(recording) == [(INVALIDATED, "testapp_item", None)]


def test_threads_record_only_their_own_reads():
    items = Item.objects.bulk_create([Item(value=i) for i in range(4)])
    barrier = threading.Barrier(4)
    seen, errors = {}, []

    def worker(item):
        try:
            with Recording() as recording:
                barrier.wait(timeout=10)  # all four recordings open at once
                for _ in range(3):
                    Item.cached.get(item.pk)
                barrier.wait(timeout=10)
            seen[item.pk] = {key for event in recording.events for key in event.keys}
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert seen == {item.pk: {str(item.pk)} for item in items}


def test_asyncio_tasks_record_only_their_own_reads():
    items = Item.objects.bulk_create([Item(value=i) for i in range(3)])

    async def one(item):
        with Recording() as recording:
            await asyncio.sleep(0)  # let the other tasks open theirs
            await Item.cached.aget(item.pk)
            await asyncio.sleep(0)
        return {key for event in recording.events for key in event.keys}

    async def all_of_them():
        return await asyncio.gather(*(one(item) for item in items))

    assert async_to_sync(all_of_them)() == [{str(item.pk)} for item in items]


def test_a_recording_counts_the_cache_round_trips_of_its_own_context(backend, settings):
    settings.CACHELAYER = {**settings.CACHELAYER, "STATS": False}  # no periodic publish inside the counts
    item = Item.objects.create(value=1)
    Item.cached.get(item.pk)  # creates the key's counters (one trip each), fills
    with Recording() as save:
        item.value = 2
        item.save()
    with Recording() as miss:
        Item.cached.get(item.pk)
    with Recording() as hit:
        Item.cached.get(item.pk)
    elsewhere = threading.Thread(target=lambda: [Item.cached.get(item.pk) for _ in range(3)])
    with Recording() as idle:
        elsewhere.start()
        elsewhere.join(timeout=30)
    assert hit.round_trips == 1  # config version, generation, row version and payload in one multi-get
    assert save.round_trips == 1  # the versions bumped and the config version read back in one trip
    assert miss.round_trips == 5  # the multi-get, the lease, a re-read under it, the fill, the release
    assert idle.round_trips == 0  # another thread's reads are its own
