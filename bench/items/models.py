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


class Comment(models.Model):
    """The comments of an Item (a post): the list workload reads the 20 of one."""

    post = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="comments")
    body = models.CharField(max_length=200)
    score = models.IntegerField()

    class Meta:
        app_label = "items"


class Counter(models.Model):
    """A row whose only container is keyed by its primary key: the pk-keyed save workload."""

    name = models.CharField(max_length=100)
    score = models.IntegerField()

    class Meta:
        app_label = "items"
