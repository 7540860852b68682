"""The two tables of the InnoDB memcached plugin's documentation, as models."""

from django.db import models

from cachelayer import CachedModelMixin


class DemoTest(models.Model):
    """innodb_memcache's demo_test: key c1, value c2, flags c3, cas c4, expiry c5."""

    c1 = models.CharField(max_length=32, primary_key=True)
    c2 = models.CharField(max_length=1024, blank=True, null=True)
    c3 = models.IntegerField(blank=True, null=True)
    c4 = models.PositiveBigIntegerField(blank=True, null=True)
    c5 = models.IntegerField(blank=True, null=True)

    class Meta:
        db_table = "demo_test"

    def __str__(self):
        return self.c1


class Country(CachedModelMixin, models.Model):
    """A country keyed by its unique name (the multi-column value example)."""

    cache_key_fields = "country"

    country = models.CharField(max_length=128, unique=True)
    population = models.BigIntegerField(null=True, blank=True)
    area_sq_km = models.IntegerField(null=True, blank=True)
    drive_side = models.CharField(max_length=1, choices=[("L", "left"), ("R", "right")], default="R")

    class Meta:
        db_table = "demo_country"
        verbose_name_plural = "countries"

    def __str__(self):
        return self.country
