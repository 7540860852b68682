"""Models the test suite maps; no migrations (created by the test runner)."""

from django.db import models

from cachelayer import CachedModelMixin


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
