"""A cached model with real migrations (tests/layer/test_migrate.py runs them
back and forth): 0002 rounds ``amount`` to cents, 0003 fills ``stock``'s NULLs."""

from django.db import models

from cachelayer import CachedModelMixin


class Price(CachedModelMixin, models.Model):
    amount = models.DecimalField(max_digits=6, decimal_places=2)
    stock = models.IntegerField(default=0)
