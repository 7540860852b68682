"""The one table every contender reads: a plain model, so that the peers and
the raw ORM run without cachelayer's receivers in their processes."""

from django.db import models


class Item(models.Model):
    email = models.CharField(max_length=100, unique=True)
    name = models.CharField(max_length=100)
    score = models.IntegerField()
    balance = models.DecimalField(max_digits=12, decimal_places=2)
    joined = models.DateTimeField()
    active = models.BooleanField(default=True)

    class Meta:
        app_label = "items"
