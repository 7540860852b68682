"""cachelayer's view of the same table: a proxy with CachedModelMixin, installed
only in the cachelayer contender's process (see bench/suite_settings.py)."""

from cachelayer import CachedModelMixin
from bench.items.models import Item


class CachedItem(CachedModelMixin, Item):
    class Meta:
        proxy = True
        app_label = "cacheditems"
