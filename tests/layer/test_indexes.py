"""Index containers: lists of rows by a non-unique column, through the cache,
as fresh as key reads on every write path."""

import threading

import pytest
from django.db import connection, transaction

import cachelayer
from cachelayer.engine import indexes, stats, versions
from cachelayer.engine.registry import registry
from cachelayer.exceptions import MappingError
from tests.testapp.models import Comment, Group, Member, Post, Topic

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
    assert {BY_POST, "testapp_comment__by_post_status", "testapp_comment__by_topic",
            "testapp_group_members__by_group"} <= names
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
    with django_assert_num_queries(0):
        assert len(Comment.cached.filter(post=first, status="open")) == 2
        assert Comment.cached.filter(post=first, status="gone") == []


def test_uncovered_combination_names_the_indexes(posts):
    with pytest.raises(MappingError, match="testapp_comment__by_post_status \\(post, status\\)"):
        Comment.cached.filter(status="open")
