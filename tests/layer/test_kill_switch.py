"""The kill switch: ``CACHELAYER["ENABLED"] = False`` reads every row from the
database, and every write still invalidates, so turning it back on serves
nothing stale (as django-cachalot's CACHALOT_ENABLED)."""

from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from cachelayer import repository
from cachelayer.engine import stats
from tests.testapp.models import Comment, Item, Post


def disabled(settings):
    return override_settings(CACHELAYER={**settings.CACHELAYER, "ENABLED": False})


def counts() -> dict:
    return dict(stats.snapshot().get("testapp_item", {}))


def test_off_every_read_asks_the_database_and_no_read_fills(settings, django_assert_num_queries):
    item = Item.objects.create(value=1)
    Item.objects.filter(pk=item.pk).update(value=1)  # outdated: the next read would miss and fill
    before = counts()
    with disabled(settings):
        assert Item.cached.get(item.pk).value == 1  # (the first read under new settings loads the containers)
        for _ in range(2):
            with django_assert_num_queries(1):
                assert Item.cached.get(item.pk).value == 1
        with django_assert_num_queries(1):
            assert Item.cached.get_many([item.pk])[item.pk].value == 1
    # nothing was read from or filled into the cache while off
    assert counts() == before
    Item.cached.get(item.pk)  # back on: a miss that fills, then hits
    assert counts()["misses"] == before["misses"] + 1 and counts()["fills"] == before["fills"] + 1
    with django_assert_num_queries(0):
        Item.cached.get(item.pk)


def test_writes_while_off_still_invalidate(settings, django_assert_num_queries):
    item = Item.objects.create(value=1)
    post = Post.objects.create(title="p")
    comment = Comment.objects.create(post=post, value=1)
    assert Item.cached.get(item.pk).value == 1  # cached before the switch goes off
    assert [c.value for c in Comment.cached.filter(post=post)] == [1]
    with disabled(settings):
        item.value = 2
        item.save()
        Item.objects.filter(pk=item.pk).update(value=3)
        comment.value = 2
        comment.save()
        assert Item.cached.get(item.pk).value == 3  # from the database
        assert [c.value for c in Comment.cached.filter(post=post)] == [2]
    # back on: what was cached before is outdated, nothing old comes back
    assert Item.cached.get(item.pk).value == 3
    assert [c.value for c in Comment.cached.filter(post=post)] == [2]
    with django_assert_num_queries(0):
        assert Item.cached.get(item.pk).value == 3


def test_the_repository_and_index_reads_obey_it_too(settings):
    item = Item.objects.create(value=1)
    post = Post.objects.create(title="p")
    Comment.objects.create(post=post, value=1)
    repository("testapp_item").get(item.pk)  # cached
    Comment.cached.filter(post=post)
    with disabled(settings), CaptureQueriesContext(connection) as queries:
        assert repository("testapp_item").get(item.pk) is not None
        assert len(Comment.cached.filter(post=post)) == 1
    assert len(queries) >= 2  # each read went to the database
    assert any("FROM testapp_item" in q["sql"].replace('"', "").replace("`", "") for q in queries)
    assert any("FROM testapp_comment" in q["sql"].replace('"', "").replace("`", "") for q in queries)
