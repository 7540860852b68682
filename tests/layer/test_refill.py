"""Refill after write (engine/refills.py): a container whose policy opts in has
the writer store the new row, read back from the database, under the new
version; the next read is a hit. Off by default."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from cachelayer.engine import loaders, stats
from cachelayer.engine.registry import container_name
from cachelayer.models import CachePolicy, Container
from tests.counting import round_trips
from tests.layer.threads import paused_after
from tests.testapp.models import Comment, Item, Post, Slugged


@pytest.fixture
def refilled():
    """Opt containers (by name) into refill_after_write; the next operation reloads them."""

    def opt_in(*names):
        policy = CachePolicy.objects.create(policy_name="refill", refill_after_write=True)
        for name in names:
            container = Container.objects.get(name=name)
            container.policy = policy
            container.save()
        Item.cached.get_many([0])  # reloads the definitions now, not in the read under test

    return opt_in


def refills(model) -> int:
    return stats.snapshot().get(container_name(model), {}).get("refills", 0)


def test_the_writer_stores_the_row_the_database_holds(refilled, django_assert_num_queries):
    """The instance holds an expression; the refill stores what the database computed."""
    refilled(container_name(Item))
    item = Item.objects.create(value=1)
    Item.cached.get(item.pk)
    item.value = F("value") + 41
    item.save()
    with django_assert_num_queries(0):
        assert Item.cached.get(item.pk).value == 42
    assert refills(Item) >= 1


def test_refill_inside_atomic_happens_at_commit(refilled, django_assert_num_queries):
    refilled(container_name(Item))
    item = Item.objects.create(value=1)
    with transaction.atomic():
        Item.objects.filter(pk=item.pk).update(value=F("value") + 1)
        Item.objects.filter(pk=item.pk).update(value=F("value") + 1)
        assert Item.cached.get(item.pk).value == 3  # read-your-writes, from the database
    with django_assert_num_queries(0):
        assert Item.cached.get(item.pk).value == 3


def test_a_key_change_refills_the_new_key_and_an_absent_entry_for_the_old(refilled, django_assert_num_queries):
    refilled(container_name(Slugged))
    row = Slugged.objects.create(slug="old", value=1)
    Slugged.cached.get("old")
    row.slug, row.value = "new", 2
    row.save()
    with django_assert_num_queries(0):
        assert Slugged.cached.get("new").value == 2
        with pytest.raises(Slugged.DoesNotExist):
            Slugged.cached.get("old")


def test_two_refilled_containers_read_the_row_back_once(refilled, django_assert_num_queries):
    """A row kept by two containers (by slug and by id) is read back in one query, and its
    versions fetched and payloads stored in one round trip each, not once per container."""
    Container.objects.create(
        name="slugged_by_id", content_type=ContentType.objects.get_for_model(Slugged), key_columns="id"
    )
    by_id = Slugged.cached.container("slugged_by_id")
    row = Slugged.objects.create(slug="s1", value=1)

    def save(value) -> tuple[int, int]:
        row.value = value
        with round_trips() as trips, CaptureQueriesContext(connection) as queries:
            row.save()
        return len(queries), trips.count

    by_id.get(row.pk), Slugged.cached.get("s1")  # definitions and counters exist before the saves compared
    plain_queries, plain_trips = save(2)
    refilled(container_name(Slugged), "slugged_by_id")
    queries, trips = save(3)
    assert (queries - plain_queries, trips - plain_trips) == (1, 2)  # one SELECT; one multi-get, one multi-set
    with django_assert_num_queries(0):
        assert (Slugged.cached.get("s1").value, by_id.get(row.pk).value) == (3, 3)
    assert (refills(Slugged), stats.snapshot()["slugged_by_id"]["refills"]) == (1, 1)


def test_a_delete_refills_an_absent_entry(refilled, django_assert_num_queries):
    refilled(container_name(Item))
    item = Item.objects.create(value=1)
    pk = item.pk
    item.delete()
    with django_assert_num_queries(0), pytest.raises(Item.DoesNotExist):
        Item.cached.get(pk)


def test_an_index_container_is_refilled_too(refilled, django_assert_num_queries):
    refilled(f"{container_name(Comment)}__by_post")
    post = Post.objects.create()
    first = Comment.objects.create(post=post, value=1)
    Comment.objects.create(post=post, value=2)
    first.value = 10
    first.save()
    with django_assert_num_queries(0):
        assert [c.value for c in Comment.cached.filter(post=post)] == [10, 2]


def test_a_policy_that_refills_must_read_through_the_cache():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="needs get_policy caching"):
        CachePolicy(policy_name="p", get_policy="db_only", refill_after_write=True).full_clean()
    CachePolicy(policy_name="p", refill_after_write=True).full_clean()


def test_refill_is_off_by_default(django_assert_num_queries):
    assert CachePolicy(policy_name="p").refill_after_write is False
    item = Item.objects.create(value=1)
    Item.cached.get(item.pk)
    item.value = 2
    with django_assert_num_queries(1):  # the UPDATE alone: no read back
        item.save()
    with django_assert_num_queries(1):  # the next reader misses and fills
        assert Item.cached.get(item.pk).value == 2
    assert refills(Item) == 0


def test_a_failed_refill_never_fails_the_write(refilled, monkeypatch):
    refilled(container_name(Item))
    item = Item.objects.create(value=1)
    errors = stats.snapshot().get(container_name(Item), {}).get("errors", 0)

    def broken(*args, **kwargs):
        raise RuntimeError("refill read failed")

    monkeypatch.setattr(loaders, "query_rows", broken)
    item.value = 2
    item.save()  # no exception: the invalidation was delivered before the refill
    monkeypatch.undo()
    assert stats.snapshot()[container_name(Item)]["errors"] == errors + 1
    assert Item.cached.get(item.pk).value == 2


@pytest.mark.parametrize("containers", [1, 2])
def test_a_refill_racing_another_writer_never_serves_the_old_row(refilled, monkeypatch, containers):
    """Writer A's refill reads value 1, then waits while writer B commits value 2
    (and refills it); A's refill, stored last, is under the version B outdated
    (in each container: the row kept by one, or by two read back in one query)."""
    names = [container_name(Slugged), "slugged_by_id"][:containers]
    if containers == 2:
        Container.objects.create(
            name=names[1], content_type=ContentType.objects.get_for_model(Slugged), key_columns="id"
        )
    refilled(*names)
    row = Slugged.objects.create(slug="s", value=0)
    mine, theirs = Slugged.objects.get(pk=row.pk), Slugged.objects.get(pk=row.pk)

    def write_one():
        mine.value = 1
        mine.save()

    thread, release, _ = paused_after(monkeypatch, loaders, "query_together", write_one)  # A's refill has read 1
    theirs.value = 2
    theirs.save()  # B: commits, bumps the versions, refills 2
    release.set()
    thread.join(10)  # A stores its row 1 now
    assert not thread.is_alive()
    for name, key in zip(names, ["s", row.pk]):
        by = Slugged.cached.container(name)
        assert by.get(key).value == 2
        assert by.get(key).value == 2
