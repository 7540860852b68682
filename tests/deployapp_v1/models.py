"""The first release's models: price to the tenth of a cent, lists by category."""

from django.db import models

from cachelayer import CachedModelMixin


class Product(CachedModelMixin, models.Model):
    sku = models.CharField(max_length=20, unique=True)
    price = models.DecimalField(max_digits=7, decimal_places=3)
    category = models.CharField(max_length=20)

    cache_indexes = ("category",)
