"""Models the test suite maps; no migrations (created by the test runner)."""

from django.db import models

from cachelayer import CachedManager, CachedModelMixin, CachedQuerySet
from tests.testapp.hands import CachedHandField, HandField


class Item(CachedModelMixin, models.Model):
    """Keyed by its integer primary key, the whole row cached."""

    value = models.IntegerField(default=0)
    text = models.CharField(max_length=100, null=True, blank=True)


class Slugged(CachedModelMixin, models.Model):
    """Keyed by a unique char column that may hold any text."""

    cache_key_fields = "slug"

    slug = models.CharField(max_length=400, unique=True)
    value = models.IntegerField(default=0)


class Parent(models.Model):
    name = models.CharField(max_length=50)


class Child(CachedModelMixin, models.Model):
    """Deleted by cascade when its parent goes."""

    parent = models.ForeignKey(Parent, on_delete=models.CASCADE)
    value = models.IntegerField(default=0)


class Pair(CachedModelMixin, models.Model):
    """Keyed by two columns, unique together."""

    cache_key_fields = "left|right"

    left = models.CharField(max_length=20)
    right = models.IntegerField()
    value = models.IntegerField(default=0)

    class Meta:
        unique_together = [("left", "right")]


class Note(CachedModelMixin, models.Model):
    """A row that can outgrow a cache item (memcached's 1 MB)."""

    body = models.TextField()


class KeyValue(models.Model):
    """A memcached-shaped table for cache_serve: long text keys, flags, cas and expiry columns."""

    key = models.CharField(max_length=250, primary_key=True)
    value = models.TextField(blank=True, default="")
    flags = models.BigIntegerField(null=True)
    cas = models.PositiveBigIntegerField(null=True)
    expires = models.IntegerField(null=True)


class Owner(models.Model):
    """A parent whose children are not deleted with it (SET_NULL, SET_DEFAULT, SET())."""

    name = models.CharField(max_length=50)


def fallback_owner():
    return None


class Pet(CachedModelMixin, models.Model):
    """Keeps living when its owner goes: Django's collector updates it with no signal."""

    owner = models.ForeignKey(Owner, null=True, on_delete=models.SET_NULL, related_name="pets")
    keeper = models.ForeignKey(Owner, null=True, default=None, on_delete=models.SET_DEFAULT, related_name="kept")
    sitter = models.ForeignKey(Owner, null=True, on_delete=models.SET(fallback_owner), related_name="sat")
    value = models.IntegerField(default=0)


class Member(CachedModelMixin, models.Model):
    cache_indexes = ("groups",)  # the reverse side of Group.members: its through rows by member

    name = models.CharField(max_length=50)


class Team(CachedModelMixin, models.Model):
    """An m2m whose auto-created through table a container may map (admin)."""

    name = models.CharField(max_length=50)
    members = models.ManyToManyField(Member, related_name="teams")


class Plain(models.Model):
    """No mixin: cached only because a container is added for it (the admin way)."""

    code = models.CharField(max_length=20, unique=True)
    value = models.IntegerField(default=0)


class ManagedQuerySet(CachedQuerySet):
    def positive(self):
        return self.filter(value__gt=0)


class ManagedManager(CachedManager.from_queryset(ManagedQuerySet)):
    """The everyday idiom: a model's own manager, built on cachelayer's queryset."""


class Managed(CachedModelMixin, models.Model):
    """A mixin model with a manager of its own, keyed by a unique column."""

    cache_key_fields = "code"

    code = models.CharField(max_length=20, unique=True)
    value = models.IntegerField(default=0)

    objects = ManagedManager()


class Typed(CachedModelMixin, models.Model):
    """A column of each type whose values must survive a serializer round trip (cache_inspect compares them)."""

    when = models.DateTimeField()
    day = models.DateField()
    at = models.TimeField()
    span = models.DurationField()
    price = models.DecimalField(max_digits=12, decimal_places=2)
    ratio = models.FloatField()
    uid = models.UUIDField()
    data = models.JSONField(null=True)
    blob = models.BinaryField(null=True)


class Post(CachedModelMixin, models.Model):
    """The parent of an index: its comments are read through Comment's index on ``post``."""

    title = models.CharField(max_length=50, default="")


class Topic(models.Model):
    """A parent whose comments keep living when it goes (SET_NULL on an indexed column)."""

    name = models.CharField(max_length=50, default="")


class Comment(CachedModelMixin, models.Model):
    """Indexed by post, by post and status, and by a nullable foreign key."""

    cache_indexes = ("post", ("post", "status"), "topic")

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="comments")
    status = models.CharField(max_length=10, default="open")
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.SET_NULL, related_name="comments")
    value = models.IntegerField(default=0)


class Group(CachedModelMixin, models.Model):
    """An m2m read through the cache: its through rows indexed by group."""

    cache_indexes = ("members",)

    name = models.CharField(max_length=50, default="")
    members = models.ManyToManyField(Member, related_name="groups")


class Place(CachedModelMixin, models.Model):
    """The parent of a multi-table inheritance: a restaurant's row lives in both tables."""

    name = models.CharField(max_length=50, unique=True)
    value = models.IntegerField(default=0)


class Restaurant(Place):
    """A child: its container caches the parent's columns too."""

    seats = models.IntegerField(default=0)


class Deal(CachedModelMixin, models.Model):
    """A custom field whose values the JSON serializer cannot carry (a Hand), indexed by table."""

    cache_indexes = ("table",)

    table = models.IntegerField(default=0)
    hand = HandField(null=True)


class CachedDeal(CachedModelMixin, models.Model):
    """The same field, declaring how it round-trips (cache_encode / cache_decode)."""

    cache_indexes = ("table",)

    table = models.IntegerField(default=0)
    hand = CachedHandField(null=True)
