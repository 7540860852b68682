"""The second release's models: price in cents, a shelf, lists by shelf too."""

from django.db import models

from cachelayer import CachedModelMixin


class Product(CachedModelMixin, models.Model):
    sku = models.CharField(max_length=20, unique=True)
    price = models.DecimalField(max_digits=7, decimal_places=2)
    category = models.CharField(max_length=20)
    shelf = models.IntegerField(db_default=1)

    cache_indexes = ("category", "shelf")
