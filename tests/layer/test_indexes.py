"""Index containers: lists of rows by a non-unique column, through the cache,
as fresh as key reads on every write path."""

import pytest
from django.db import connection, transaction

import cachelayer
from cachelayer.engine import loaders, stats
from cachelayer.engine.registry import registry
from cachelayer.exceptions import MappingError
from cachelayer.models import Container
from tests.layer.threads import all_at_once, count_calls, paused_after
from tests.protocol.conftest import start_server  # noqa: F401 (a fixture)
from tests.testapp.models import Comment, Group, Item, Member, Post, Topic

BY_POST = "testapp_comment__by_post"


def pks(instances):
    return [instance.pk for instance in instances]


@pytest.fixture
def posts():
    first, second = Post.objects.create(title="first"), Post.objects.create(title="second")
    for status in ("open", "closed", "open"):
        Comment.objects.create(post=first, status=status)
    Comment.objects.create(post=second)
    return first, second


def database_list(**lookups):
    return list(Comment.objects.filter(**lookups).order_by("pk").values_list("pk", flat=True))


def test_declared_indexes_become_index_containers():
    registry.load()
    names = {name for name, d in registry.by_name.items() if d.is_index}
    assert {
        BY_POST,
        "testapp_comment__by_post_status",
        "testapp_comment__by_topic",
        "testapp_group_members__by_group",
        "testapp_group_members__by_member",
    } <= names
    assert not registry.by_name["testapp_comment"].is_index


def test_hit_runs_no_sql(posts, django_assert_num_queries):
    first, _ = posts
    assert pks(Comment.cached.filter(post=first)) == database_list(post=first)
    with django_assert_num_queries(0):
        comments = Comment.cached.filter(post=first)
    assert pks(comments) == database_list(post=first) and len(comments) == 3
    assert all(isinstance(c, Comment) and c.post_id == first.pk for c in comments)


def test_instance_or_id(posts, django_assert_num_queries):
    first, _ = posts
    expected = database_list(post=first)
    Comment.cached.filter(post=first)
    with django_assert_num_queries(0):
        assert pks(Comment.cached.filter(post_id=first.pk)) == expected
        assert pks(Comment.cached.filter(post=first.pk)) == expected
        assert pks(Comment.cached.filter(post=str(first.pk))) == expected


def test_two_column_index(posts, django_assert_num_queries):
    first, _ = posts
    assert pks(Comment.cached.filter(post=first, status="open")) == database_list(post=first, status="open")
    assert Comment.cached.filter(post=first, status="gone") == []  # an empty list is cached too
    with django_assert_num_queries(0):
        assert len(Comment.cached.filter(post=first, status="open")) == 2
        assert Comment.cached.filter(post=first, status="gone") == []


def test_uncovered_combination_names_the_indexes(posts):
    with pytest.raises(MappingError, match="testapp_comment__by_post_status \\(post, status\\)"):
        Comment.cached.filter(status="open")


def test_miss_is_one_query(posts, django_assert_num_queries):
    first, _ = posts
    with django_assert_num_queries(1):
        Comment.cached.filter(post=first)


# -- freshness: every write path moves rows between lists -----------------------


def assert_lists_fresh(*posts_):
    """Every cached list (by post, by post and status) equals the database, and shows current values."""
    for post in posts_:
        for lookups in ({"post": post}, {"post": post, "status": "open"}, {"post": post, "status": "closed"}):
            cached = Comment.cached.filter(**lookups)
            assert pks(cached) == database_list(**lookups), lookups
            assert [c.value for c in cached] == [c.value for c in Comment.objects.filter(**lookups).order_by("pk")]


def _save_moves(first, second):
    comment = Comment.objects.filter(post=first).first()
    comment.post = second
    comment.save()


def _save_moves_hand_built(first, second):
    comment = Comment.objects.filter(post=first).first()
    Comment(pk=comment.pk, post=second, status=comment.status).save()  # the old post comes from the database


def _save_update_fields(first, second):
    comment = Comment.objects.filter(post=first).first()
    comment.status = "closed"
    comment.value = 9
    comment.save(update_fields=["status", "value"])


def _create(first, second):
    Comment.objects.create(post=second, status="closed")


def _delete(first, second):
    Comment.objects.filter(post=first).first().delete()


def _queryset_update(first, second):
    Comment.objects.filter(post=first, status="open").update(post=second)


def _queryset_update_value(first, second):
    Comment.objects.filter(post=first).update(value=5)  # no indexed column: the lists still show the new value


def _queryset_delete(first, second):
    Comment.objects.filter(status="open").delete()


def _bulk_create(first, second):
    Comment.objects.bulk_create([Comment(post=first, status="closed"), Comment(post=second)])


def _bulk_update(first, second):
    comments = list(Comment.objects.filter(post=first))
    for comment in comments:
        comment.post, comment.status = second, "closed"
    Comment.objects.bulk_update(comments, ["post", "status"])


def _repository(first, second):
    comment = Comment.objects.filter(post=first).first()
    cachelayer.repository("testapp_comment").delete(str(comment.pk))


def _parent_delete(first, second):
    first.delete()  # CASCADE: its comments go, with no signal of their own for the list


WRITES = [
    _save_moves,
    _save_moves_hand_built,
    _save_update_fields,
    _create,
    _delete,
    _queryset_update,
    _queryset_update_value,
    _queryset_delete,
    _bulk_create,
    _bulk_update,
    _repository,
    _parent_delete,
]


@pytest.mark.parametrize("write", WRITES, ids=[w.__name__.strip("_") for w in WRITES])
def test_every_write_path_refreshes_old_and_new_lists(posts, write):
    first, second = posts
    ids = first.pk, second.pk  # a deleted post forgets its pk
    assert_lists_fresh(*ids)  # cached
    write(first, second)
    assert_lists_fresh(*ids)


def test_set_null_leaves_the_list(posts):
    first, _ = posts
    topic = Topic.objects.create(name="t")
    Comment.objects.filter(post=first).update(topic=topic)
    assert len(Comment.cached.filter(topic=topic)) == 3
    assert len(Comment.cached.filter(topic=None)) == 1  # NULL: in no cached list, the database answers
    topic_id = topic.pk
    topic.delete()  # SET_NULL: the collector updates the comments with no signal
    assert Comment.cached.filter(topic=topic_id) == []
    assert len(Comment.cached.filter(topic=None)) == 4


def test_value_change_refreshes_the_rows_a_list_returns(posts):
    first, _ = posts
    comment = Comment.cached.filter(post=first)[0]
    comment.value = 42
    comment.save()
    assert Comment.cached.filter(post=first)[0].value == 42


# -- transactions ------------------------------------------------------------------


def test_read_your_writes_and_rollback(posts, django_assert_num_queries):
    first, second = posts
    assert_lists_fresh(first, second)
    with transaction.atomic():
        _save_moves(first, second)
        assert pks(Comment.cached.filter(post=second)) == database_list(post=second)  # bypasses the cache
        assert pks(Comment.cached.filter(post=first)) == database_list(post=first)
    assert_lists_fresh(first, second)

    class Rollback(Exception):
        pass

    before = database_list(post=first)
    with pytest.raises(Rollback), transaction.atomic():
        Comment.objects.filter(post=first).update(post=second)
        assert Comment.cached.filter(post=first) == []
        raise Rollback
    with django_assert_num_queries(0):
        assert pks(Comment.cached.filter(post=first)) == before  # the rollback left the cache alone


# -- races and stampedes -------------------------------------------------------------


def test_stale_fill_of_a_list_is_never_served(posts, monkeypatch):
    """A reader paused between its database read and its fill while a writer moves a row in."""
    first, second = posts
    old = database_list(post=second)
    thread, release, result = paused_after(
        monkeypatch, loaders, "query_lists", lambda: pks(Comment.cached.filter(post=second))
    )
    _save_moves(first, second)  # commits and bumps the list's version while the reader holds the old list
    release.set()
    thread.join(10)
    assert result["value"] == old
    assert pks(Comment.cached.filter(post=second)) == database_list(post=second) != old


def test_64_threads_on_a_cold_list_cost_at_most_two_queries(posts, monkeypatch):
    first, _ = posts
    expected = database_list(post=first)
    queries = count_calls(monkeypatch, loaders, "query_lists")
    results, errors = all_at_once(64, lambda: pks(Comment.cached.filter(post=first)))
    assert errors == []
    assert results == [expected] * 64
    assert 1 <= len(queries) <= 2, f"{len(queries)} SQL queries for 64 concurrent misses (0: the count missed them)"


# -- limits ------------------------------------------------------------------------


def test_a_list_over_the_limit_is_served_from_the_database(posts, settings, django_assert_num_queries):
    first, _ = posts
    settings.CACHELAYER = {**settings.CACHELAYER, "INDEX_MAX_ROWS": 2}
    stats.reset()
    assert len(Comment.cached.filter(post=first)) == 3
    expected = database_list(post=first)
    with django_assert_num_queries(1):  # its entry holds the length only: no lease, the database answers
        assert pks(Comment.cached.filter(post=first)) == expected
    assert stats.snapshot()[BY_POST]["too_large"] == 2
    second = posts[1]
    Comment.cached.filter(post=second)
    with django_assert_num_queries(0):
        assert len(Comment.cached.filter(post=second)) == 1  # within the limit: cached


# -- associations --------------------------------------------------------------------


def test_reverse_foreign_key(posts, django_assert_num_queries):
    first, _ = posts
    expected = database_list(post=first)
    assert pks(first.cached_related("comments")) == expected
    with django_assert_num_queries(0):
        assert pks(first.cached_related("comments")) == expected


def test_many_to_many_both_sides(django_assert_num_queries):
    group = Group.objects.create(name="g")
    members = [Member.objects.create(name=n) for n in "abc"]
    group.members.add(members[2], members[0])
    assert pks(group.cached_related("members")) == [members[0].pk, members[2].pk]
    with django_assert_num_queries(0):
        assert pks(group.cached_related("members")) == [members[0].pk, members[2].pk]
    group.members.remove(members[0])
    group.members.add(members[1])
    assert pks(group.cached_related("members")) == [members[1].pk, members[2].pk]
    members[1].name = "renamed"
    members[1].save()
    assert [m.name for m in group.cached_related("members")] == ["renamed", "c"]
    assert pks(members[2].cached_related("groups")) == [group.pk]  # the reverse side (Member declares it)
    group.members.clear()
    assert group.cached_related("members") == []
    assert members[2].cached_related("groups") == []


def test_many_to_many_to_a_target_no_container_maps_by_primary_key(django_assert_num_queries):
    """The through rows come from the cache, the targets from the database by pk (one query):
    a project keying its model by another column (``cache_key_fields = "sku"``)."""
    group = Group.objects.create(name="g")
    members = [Member.objects.create(name=n) for n in "ab"]
    group.members.add(*members)
    Container.objects.filter(name="testapp_member").update(key_columns="name")  # update(): no reload signal
    registry.load()
    assert [m.name for m in group.cached_related("members")] == ["a", "b"]
    with django_assert_num_queries(1):
        assert [m.name for m in group.cached_related("members")] == ["a", "b"]
    members[0].name = "renamed"
    members[0].save()
    assert [m.name for m in group.cached_related("members")] == ["renamed", "b"]


# -- containers, repository, cache_serve, warm, inspect ------------------------------


def test_key_reads_and_writes_on_an_index_are_refused(posts):
    from cachelayer.exceptions import IndexContainer
    from cachelayer.mixins import CachedAccess

    with pytest.raises(IndexContainer, match="index container"):
        CachedAccess(Comment, BY_POST).get_many([posts[0].pk])
    for verb in ("set", "delete"):
        with pytest.raises(IndexContainer, match=f"{verb} is refused"):
            getattr(cachelayer.repository(BY_POST), verb)(str(posts[0].pk), *(["x"] if verb == "set" else []))
    assert Comment.objects.count() == 4


def test_repository_get_joins_the_primary_keys(posts, django_assert_num_queries):
    first, second = posts
    repo = cachelayer.repository(BY_POST)
    expected = "|".join(str(pk) for pk in database_list(post=first))
    assert repo.get(str(first.pk)) == expected
    assert repo.get("999") is None  # no row holds it: a miss, as memcached says
    with django_assert_num_queries(0):
        assert repo.get_many([str(first.pk), "999"]) == {str(first.pk): expected}


def test_cache_serve_get_on_an_index(posts, start_server):
    first, _ = posts
    container = Container.objects.get(name=BY_POST)
    container.exposed = True  # auto-created containers are not exposed; save() tells every process
    container.save()
    client = start_server().client()
    expected = "|".join(str(pk) for pk in database_list(post=first)).encode()
    assert client.get(f"@@{BY_POST}.{first.pk}") == expected
    assert client.get(f"@@{BY_POST}") is not None  # switch to the index: plain keys address it now
    assert client.get(str(first.pk)) == expected  # twice: the second is a hit, never read as a row
    assert client.get(str(first.pk)) == expected


def test_warm_fills_each_distinct_value(posts, django_assert_num_queries):
    from cachelayer.tasks import warming

    first, second = posts
    result = warming.warm(registry.get(BY_POST))
    assert (result.warmed, result.cached) == (2, 0)  # two posts, two lists
    with django_assert_num_queries(0):
        assert len(Comment.cached.filter(post=first)) == 3 and len(Comment.cached.filter(post=second)) == 1
    assert warming.warm(registry.get(BY_POST)).cached == 2


def test_inspect_compares_lists(posts):
    from cachelayer.tasks.inspection import inspect

    first, _ = posts
    Comment.cached.filter(post=first)
    assert inspect(BY_POST).ok
    with connection.cursor() as cursor:  # a write nothing sees: the cached list is now stale
        cursor.execute(
            "UPDATE testapp_comment SET post_id = %s WHERE id = %s", [posts[1].pk, database_list(post=first)[0]]
        )
    result = inspect(BY_POST)
    assert result.stale == 1 and result.stale_keys == [str(first.pk)]


def test_migrate_keeps_declared_indexes_in_step():
    from cachelayer.tasks import autocontainers

    Container.objects.filter(name=BY_POST).update(key_columns="status")
    Container.objects.create(
        name="testapp_comment__by_gone",
        content_type=Container.objects.get(name=BY_POST).content_type,
        key_columns="status",
        declared=True,
    )
    touched = autocontainers.create_missing()
    assert set(touched) == {BY_POST, "testapp_comment__by_gone"}
    assert Container.objects.get(name=BY_POST).key_columns == "post"
    assert not Container.objects.filter(name="testapp_comment__by_gone").exists()


def test_migrate_creates_the_missing_containers_in_one_statement_and_one_bump():
    """migrate (and every flush of a test database) recreates all of them: not one query and
    one configuration bump per container."""
    from django.test.utils import CaptureQueriesContext

    from cachelayer.tasks import autocontainers
    from tests.layer.test_wiring import configuration_version

    declared = autocontainers.declared_containers()
    assert len(declared) > 10
    Container.objects.filter(name__in=declared).delete()
    before = configuration_version()
    with CaptureQueriesContext(connection) as queries:
        touched = autocontainers.create_missing()
    assert set(touched) == set(declared) and Container.objects.filter(name__in=declared).count() == len(declared)
    inserts = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith('INSERT INTO "cachelayer_container"')
        or q["sql"].startswith("INSERT INTO `cachelayer_container`")
    ]
    assert len(inserts) == 1
    apps_declaring = {model._meta.app_label for model, _ in declared.values()}
    assert len(queries.captured_queries) <= 7 + len(apps_declaring)  # content types: one query per app
    assert configuration_version() == before + 1
    assert Item.cached.get(Item.objects.create(value=4).pk).value == 4  # every process reloads


def test_check_says_index_and_warns_when_an_edited_index_drifts():
    from cachelayer.checks import check_containers

    Container.objects.filter(name=BY_POST).update(key_columns="post|status", declared=False)
    found = {(m.id, m.obj.name) for m in check_containers(databases=["default"]) if m.id.endswith(("I010", "W012"))}
    assert ("cachelayer.I010", "testapp_comment__by_post_status") in found
    assert ("cachelayer.W012", BY_POST) in found
