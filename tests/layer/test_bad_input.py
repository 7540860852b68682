"""Bad input never breaks a read and never leaves a partial write: rows over
the cache's item limit, corrupt or foreign payloads, and the JSON serializer
that executes nothing on load."""

import logging
import pickle

import pytest

import cachelayer
from cachelayer.adapters.registry import get_adapter
from cachelayer.engine import stats, versions
from cachelayer.engine.registry import registry
from cachelayer.exceptions import ValueTooLarge
from demo_project.demo.models import DemoTest
from tests.layer.test_repository import make_container
from tests.testapp.models import Item, Note

MiB = 1024 * 1024


def test_a_row_over_the_item_limit_is_served_from_the_database(backend, settings, django_assert_num_queries):
    if backend != "memcached":  # memcached's own limit is the default; give the others the same
        settings.CACHELAYER = {**settings.CACHELAYER, "MAX_ITEM_SIZE": MiB}
        Note.cached.get_many([0])  # reload definitions after the settings change
    big = Note.objects.create(body="x" * (MiB + 1000))
    small = Note.objects.create(body="small")
    for _ in range(2):
        with django_assert_num_queries(1):
            assert Note.cached.get(big.pk).body == big.body
    Note.cached.get(small.pk)
    with django_assert_num_queries(0):
        assert Note.cached.get(small.pk).body == "small"
    counts = stats.snapshot()["testapp_note"]
    assert counts["too_large"] == 2 and counts["errors"] == 0
    assert all(breaker.failures == 0 for breaker in get_adapter(backend).breakers.values())


def test_a_cache_only_write_over_the_limit_is_refused_whole(backend, settings):
    settings.CACHELAYER = {**settings.CACHELAYER, "MAX_ITEM_SIZE": 1000}
    make_container("kv", DemoTest, "cache_only", key_columns="c1", value_columns="c2")
    repo = cachelayer.repository("kv")
    repo.set("k", "small")
    with pytest.raises(ValueTooLarge, match=r"cannot set 'k' in container 'kv'.*over the cache's limit of 1000"):
        repo.set("k", "y" * 5000)
    with pytest.raises(ValueTooLarge, match="cannot append"):
        repo.append("k", "y" * 5000)
    assert repo.get("k") == "small"


def plant(backend, key, raw: bytes) -> None:
    """Write ``raw`` where cachelayer keeps the payload of ``key``."""
    definition = registry.for_cached_model(Item)
    get_adapter(backend).store({key: {definition.keys.data(definition.keys.part(key)): raw}}, 0)


@pytest.mark.parametrize("raw", [b"\x80\x05garbage", b"not ours", pickle.dumps(("a", "foreign", "tuple", None))])
def test_a_corrupt_or_foreign_payload_is_a_miss_and_is_overwritten(backend, raw, django_assert_num_queries):
    item = Item.objects.create(value=41)
    plant(backend, str(item.pk), raw)
    with django_assert_num_queries(1):
        assert Item.cached.get(item.pk).value == 41
    with django_assert_num_queries(0):
        assert Item.cached.get(item.pk).value == 41


EXECUTED = []


class Exploit:
    def __reduce__(self):
        return (EXECUTED.append, ("code ran",))


def test_the_json_serializer_executes_nothing_on_load(backend, settings, django_assert_num_queries):
    settings.CACHELAYER = {**settings.CACHELAYER, "SERIALIZER": "json"}
    item = Item.objects.create(value=3, text="héllo")
    Item.cached.get(item.pk)
    with django_assert_num_queries(0):
        cached = Item.cached.get(item.pk)
    assert (cached.value, cached.text) == (3, "héllo")

    plant(backend, str(item.pk), pickle.dumps(Exploit()))
    assert Item.cached.get(item.pk).value == 3
    assert EXECUTED == []


class CreatesFile:
    """A pickle that creates a file when it is loaded: the proof that code ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "x"))


def test_a_planted_pickle_never_runs_and_the_read_answers_from_the_database(
    backend, tmp_path, caplog, monkeypatch, django_assert_num_queries
):
    caplog.set_level(logging.WARNING, logger="cachelayer")
    monkeypatch.setattr(versions, "_warned_rejected", set())  # as in a fresh process
    item = Item.objects.create(value=7)
    Item.cached.get(item.pk)  # filled: the key holds a real payload
    marker = tmp_path / "ran"
    exploit = pickle.dumps(CreatesFile(marker))
    definition = registry.for_cached_model(Item)
    genuine = get_adapter(backend).fetch({None: [definition.keys.data(str(item.pk))]}).found[None]
    tag = next(iter(genuine.values()))[:16]  # a genuine MAC, for another body
    for raw in (exploit, tag + exploit, bytes(16) + exploit):
        plant(backend, str(item.pk), raw)
        with django_assert_num_queries(1):
            assert Item.cached.get(item.pk).value == 7
        assert not marker.exists()
    assert stats.snapshot()["testapp_item"]["rejected"] >= 3  # each one seen (the lease holder looks twice)
    warnings = [r for r in caplog.records if "failed authentication" in r.getMessage()]
    assert len(warnings) == 1  # once per container and process, not per read
    assert (warnings[0].container, warnings[0].cache, warnings[0].keys) == ("testapp_item", backend, [str(item.pk)])
    with django_assert_num_queries(0):
        assert Item.cached.get(item.pk).value == 7  # the fill replaced it


def test_a_payload_moved_to_another_key_is_rejected(backend, django_assert_num_queries):
    first, second = Item.objects.create(value=1), Item.objects.create(value=2)
    Item.cached.get_many([first.pk, second.pk])
    definition = registry.for_cached_model(Item)
    adapter, keys = get_adapter(backend), definition.keys
    names = [keys.ver(str(first.pk)), keys.data(str(first.pk))]
    ver, moved = (adapter.fetch({None: names}).found[None][name] for name in names)
    plant(backend, str(second.pk), moved)
    adapter.store({None: {keys.ver(str(second.pk)): ver}}, 0)  # the version too: only the MAC tells them apart
    with django_assert_num_queries(1):
        assert Item.cached.get(second.pk).value == 2


def test_a_rotated_key_keeps_old_payloads_while_it_is_a_fallback(backend, settings, django_assert_num_queries):
    settings.CACHELAYER = {**settings.CACHELAYER, "PAYLOAD_KEY": "old"}
    item = Item.objects.create(value=5)
    Item.cached.get(item.pk)
    settings.CACHELAYER = {**settings.CACHELAYER, "PAYLOAD_KEY": "new", "PAYLOAD_KEY_FALLBACKS": ["old"]}
    Item.cached.get_many([0])  # reload definitions after the settings change
    with django_assert_num_queries(0):
        assert Item.cached.get(item.pk).value == 5
    settings.CACHELAYER = {**settings.CACHELAYER, "PAYLOAD_KEY": "newer", "PAYLOAD_KEY_FALLBACKS": []}
    Item.cached.get_many([0])
    with django_assert_num_queries(1):
        assert Item.cached.get(item.pk).value == 5
