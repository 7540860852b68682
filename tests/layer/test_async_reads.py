"""Async reads: ``aget`` / ``aget_many`` / ``afilter`` / ``acached_related`` behave as their sync forms.

Each coroutine runs under ``async_to_sync``, so its ``sync_to_async(thread_sensitive=True)``
read comes back to this test's thread and database connection: the query
counts below see it, as they would in a Django async view.
"""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from django.contrib.contenttypes.models import ContentType

from cachelayer import signals
from cachelayer.exceptions import MappingError
from cachelayer.models import Container
from tests.layer.test_reads import fetch_calls  # noqa: F401 (fixture: counts cache round trips)
from tests.testapp.models import Comment, Group, Item, Member, Pair, Post, Slugged


def wait(coroutine_function, *args, **kwargs):
    return async_to_sync(coroutine_function)(*args, **kwargs)


def test_aget_hit_makes_no_query(django_assert_num_queries):
    item = Item.objects.create(value=7)
    with django_assert_num_queries(1):
        assert wait(Item.cached.aget, item.pk).value == 7
    with django_assert_num_queries(0):
        hit = wait(Item.cached.aget, str(item.pk))  # key types are normalised as for get
    assert (hit.pk, hit.value, hit._state.adding, type(hit)) == (item.pk, 7, False, Item)


def test_aget_of_an_absent_key_raises_and_is_cached_negatively(django_assert_num_queries):
    with pytest.raises(Item.DoesNotExist):
        wait(Item.cached.aget, 999)
    with django_assert_num_queries(0), pytest.raises(Item.DoesNotExist):
        wait(Item.cached.aget, 999)


def test_aget_many_is_one_round_trip_and_one_query(fetch_calls, django_assert_num_queries):
    items = Item.objects.bulk_create([Item(value=i) for i in range(50)])
    keys = [item.pk for item in items]
    fetch_calls.clear()
    with django_assert_num_queries(1):
        first = wait(Item.cached.aget_many, keys + [10**9])
    assert {k: v.value for k, v in first.items()} == {item.pk: item.value for item in items}
    assert fetch_calls[0] == 51
    fetch_calls.clear()
    with django_assert_num_queries(0):
        second = wait(Item.cached.aget_many, iter(keys))  # any iterable, as get_many
    assert len(second) == 50 and fetch_calls == [50]


def test_aget_many_multi_column_keys(django_assert_num_queries):
    Pair.objects.create(left="a", right=1, value=11)
    assert {k: v.value for k, v in wait(Pair.cached.aget_many, [("a", 1), ("b", 1)]).items()} == {("a", 1): 11}
    with django_assert_num_queries(0):
        assert wait(Pair.cached.aget, "a|1").value == 11


def test_aget_through_another_container_and_refusal(django_assert_num_queries):
    Container.objects.create(
        name="slugged_by_id", content_type=ContentType.objects.get_for_model(Slugged), key_columns="id"
    )
    Container.objects.create(
        name="items_elsewhere", content_type=ContentType.objects.get_for_model(Item), key_columns="id"
    )
    row = Slugged.objects.create(slug="s1", value=1)
    assert wait(Slugged.cached.container("slugged_by_id").aget, row.pk).slug == "s1"
    with django_assert_num_queries(0):
        assert wait(Slugged.cached.container("slugged_by_id").aget, row.pk).slug == "s1"
    with pytest.raises(MappingError, match="maps testapp.Item, not testapp.Slugged"):
        wait(Slugged.cached.container("items_elsewhere").aget, row.pk)


def test_aget_sends_hit_and_miss_signals():
    items = Item.objects.bulk_create([Item(value=i) for i in range(2)])
    wait(Item.cached.aget, items[0].pk)
    seen = []

    def receiver(signal, sender, container, key, **kwargs):
        seen.append((signal is signals.cache_hit, key))

    signals.cache_hit.connect(receiver)
    signals.cache_miss.connect(receiver)
    try:
        wait(Item.cached.aget_many, [items[0].pk, items[1].pk])
    finally:
        signals.cache_hit.disconnect(receiver)
        signals.cache_miss.disconnect(receiver)
    assert sorted(seen) == [(False, str(items[1].pk)), (True, str(items[0].pk))]


def test_concurrent_agets_in_one_event_loop(django_assert_num_queries):
    items = Item.objects.bulk_create([Item(value=i) for i in range(10)])
    Item.cached.get_many([item.pk for item in items])

    async def many():
        return await asyncio.gather(*(Item.cached.aget(item.pk) for item in items * 3))

    with django_assert_num_queries(0):
        found = async_to_sync(many)()
    assert [hit.value for hit in found] == [item.value for item in items * 3]


def test_afilter_and_acached_related_read_lists_as_their_sync_forms(django_assert_num_queries):
    post, other = Post.objects.create(title="p"), Post.objects.create(title="o")
    comments = [Comment.objects.create(post=post, status=status) for status in ("open", "closed", "open")]
    group = Group.objects.create(name="g")
    members = [Member.objects.create(name=name) for name in ("b", "a")]
    group.members.add(*members)
    for lookups in ({"post": post}, {"post": post.pk, "status": "open"}, {"post": other}):
        wait(Comment.cached.afilter, **lookups)  # each list read once: a miss, filled
    wait(group.acached_related, "members")
    with django_assert_num_queries(0):
        assert [c.pk for c in wait(Comment.cached.afilter, post=post)] == [c.pk for c in comments]
        assert [c.pk for c in wait(Comment.cached.afilter, post=post.pk, status="open")] == [
            comments[0].pk,
            comments[2].pk,
        ]
        assert [c.pk for c in wait(post.acached_related, "comments")] == [c.pk for c in comments]
        assert [m.name for m in wait(group.acached_related, "members")] == ["b", "a"]  # by primary key
        assert wait(Comment.cached.afilter, post=other) == []
    with pytest.raises(MappingError, match="not a reverse foreign key"):
        wait(post.acached_related, "title")
