"""cachelayer's view of the same table: a proxy with CachedModelMixin, installed
only in the cachelayer contender's process (see bench/suite_settings.py)."""

from bench.items.models import Comment, Counter, Item
from cachelayer import CachedModelMixin


class CachedItem(CachedModelMixin, Item):
    class Meta:
        proxy = True
        app_label = "cacheditems"


class CachedComment(CachedModelMixin, Comment):
    cache_indexes = ("post",)  # its index container: cacheditems_cachedcomment__by_post

    class Meta:
        proxy = True
        app_label = "cacheditems"


class CachedCounter(CachedModelMixin, Counter):
    """Its one container is keyed by the primary key: a save reads no old key."""

    class Meta:
        proxy = True
        app_label = "cacheditems"
