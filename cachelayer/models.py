"""Configuration tables, after innodb_memcache's containers, cache_policies
and config_options. Any edit takes effect in every process on its next
operation: saving or deleting one bumps the configuration version on every
cache (receivers.configuration_changed), and each process reloads its
registry (engine/registry.py) when it sees the new version."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models

from cachelayer.core import policies
from cachelayer.core.mapping import validate_container
from cachelayer.core.policies import Policy
from cachelayer.core.sensitivity import exposure_errors
from cachelayer.signals import configuration_saved


def _policy_field(default: str, help_text: str):
    return models.CharField(max_length=16, choices=Policy.choices, default=default, help_text=help_text)


class Configuration(models.Model):
    """A configuration table: each row written by a save is announced by ``configuration_saved``.

    Not by a post_save receiver: with nothing mapped and its definitions loaded,
    cachelayer keeps none connected (Django's own tests assert that none is, and
    projects' may). Announced from ``_save_table``, the one method that both
    ``save()`` and ``loaddata`` reach: a fixture's raw rows are saved by
    ``Model.save_base(obj)``, past any override of ``save_base``. Its signature is
    the same on Django 5.2 and 6.0; tests/layer/test_wiring.py fails if either path
    stops announcing."""

    class Meta:
        abstract = True

    def _save_table(self, raw=False, cls=None, force_insert=False, force_update=False, using=None, update_fields=None):
        updated = super()._save_table(raw, cls, force_insert, force_update, using, update_fields)  # type: ignore[misc]
        configuration_saved.send(sender=type(self), instance=self, using=using)
        return updated


class CachePolicy(Configuration):
    """Which store each operation class uses (innodb_memcache.cache_policies)."""

    policy_name = models.CharField(max_length=40, unique=True)
    get_policy = _policy_field(policies.DEFAULTS["get_policy"], "get / get_many")
    set_policy = _policy_field(
        policies.DEFAULTS["set_policy"], "set, add, replace, append, prepend, incr, decr, cas, touch"
    )
    delete_policy = _policy_field(policies.DEFAULTS["delete_policy"], "delete")
    flush_policy = _policy_field(
        policies.DEFAULTS["flush_policy"],
        "flush: cache_only bumps the generation; db_only/caching also DELETE every row",
    )
    refill_after_write = models.BooleanField(
        default=False,
        help_text="After a committed write, store the new row, read back from the database, under its new "
        "version, so the next read of a hot row hits (the writer pays one query and two cache round trips; "
        "get_policy must be caching).",
    )

    class Meta:
        verbose_name_plural = "cache policies"
        ordering = ["policy_name"]

    def __str__(self):
        return self.policy_name

    def clean(self):
        errors = {}
        for field in policies.DEFAULTS:
            try:
                setattr(self, field, policies.normalize(getattr(self, field)))
            except ValueError as exc:
                errors[field] = str(exc)
        if self.refill_after_write and self.get_policy != Policy.CACHING and "get_policy" not in errors:
            errors["refill_after_write"] = "A refill is a read's fill: it needs get_policy caching."
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        for field in policies.DEFAULTS:
            setattr(self, field, policies.normalize(getattr(self, field)))
        super().save(*args, **kwargs)


class Container(Configuration):
    """Maps a memcached-style key space onto a model (innodb_memcache.containers)."""

    name = models.CharField(max_length=50, unique=True)
    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, verbose_name="model", help_text="The model the keys address."
    )
    database = models.CharField(
        max_length=64, blank=True, help_text="Database alias; blank = the router's db_for_write."
    )
    key_columns = models.CharField(
        max_length=255, help_text="Key field, or several joined by '|' (primary key or unique together)."
    )
    value_columns = models.CharField(
        max_length=1024, blank=True, help_text="Fields a key/value read returns, joined by '|'; blank = all."
    )
    flags_column = models.CharField(max_length=64, blank=True)
    cas_column = models.CharField(max_length=64, blank=True)
    expire_time_column = models.CharField(max_length=64, blank=True)
    policy = models.ForeignKey(
        CachePolicy, null=True, blank=True, on_delete=models.PROTECT, help_text="Blank = caching for all but flush."
    )
    timeout = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds a payload lives; blank = CACHELAYER TIMEOUT, 0 = no expiry."
    )
    cache_alias = models.CharField(max_length=64, blank=True, help_text="Blank = CACHELAYER CACHE_ALIAS.")
    enabled = models.BooleanField(default=True)
    exposed = models.BooleanField(
        default=False,
        help_text="Reachable through cache_serve (off by default: nothing is served unless someone says so).",
    )
    declared = models.BooleanField(
        default=False,
        editable=False,
        help_text="Created from the model's cache_key_fields / cache_value_fields: migrate keeps the "
        "mapping in step with them until it is edited in the admin.",
    )

    class Meta:
        ordering = ["name"]
        permissions = [
            ("warm_container", "Can warm a container's cache"),
            ("flush_container", "Can flush a container's cache"),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        errors = validate_container(self)
        model = self.content_type.model_class() if self.content_type_id else None
        if model is not None:
            policy = self.policy if self.policy_id else None
            for field, messages in exposure_errors(model, self.exposed, policies.of(policy)).items():
                errors.setdefault(field, []).extend(messages)
        if errors:
            raise ValidationError(errors)


class ConfigOption(Configuration):
    """Global options (innodb_memcache.config_options)."""

    class Name(models.TextChoices):
        SEPARATOR = "separator", "separator (joins multi-column values)"
        TABLE_MAP_DELIMITER = "table_map_delimiter", "table_map_delimiter (as in @@container.key)"

    DEFAULTS = {Name.SEPARATOR: "|", Name.TABLE_MAP_DELIMITER: "."}

    name = models.CharField(max_length=50, unique=True, choices=Name.choices)
    value = models.CharField(max_length=50)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} = {self.value}"

    def clean(self):
        if not self.value or any(ch.isspace() for ch in self.value):
            raise ValidationError({"value": "Use one or more non-blank characters."})


class OutboxEntry(models.Model):
    """An invalidation the cache did not take, kept until it is replayed.

    Stored as cache keys, not container keys, so a replay needs no container
    definition (it works after the container was edited or deleted). One row
    per (cache, server, counter key) at most: a second write to a key during
    an outage updates the row (its ``revision``) instead of adding one.
    """

    cache_alias = models.CharField(max_length=100)
    # The server owed; blank: wherever the route (or, for a shared key, every server) is now.
    server = models.CharField(max_length=255, blank=True)
    container = models.CharField(max_length=255, blank=True, help_text="Blank for a configuration change.")
    # The counter bumped (a row version, or a shared key: generation, configuration version).
    key = models.CharField(max_length=250)
    # The user key that routes a row version's keys; null for a shared key.
    route = models.JSONField(null=True)
    counters = models.JSONField(default=list)
    payloads = models.JSONField(default=list)  # payload keys to delete with it
    # Random, new on every write of the row: a replay deletes only what it delivered.
    revision = models.BigIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "outbox entry"
        verbose_name_plural = "outbox"
        ordering = ["id"]
        indexes = [models.Index(fields=["cache_alias", "id"], name="cachelayer_outbox_alias")]
        constraints = [
            models.UniqueConstraint(fields=["cache_alias", "server", "key"], name="cachelayer_outbox_one_per_key"),
        ]

    def __str__(self):
        return f"{self.container or 'configuration'} on {self.cache_alias} ({self.created:%Y-%m-%d %H:%M:%S})"


class FollowerPosition(models.Model):
    """How far ``cache_follow`` has delivered the binlog of one database, and how it is doing.

    The position only moves after the invalidations before it were delivered
    (or kept in the outbox), so a restart resumes without missing a write.
    """

    database = models.CharField(max_length=64, unique=True, help_text="The followed DATABASES alias.")
    server_id = models.PositiveIntegerField(help_text="The replica server id the follower connects with.")
    log_file = models.CharField(max_length=255)
    log_pos = models.PositiveBigIntegerField()
    gtid = models.CharField(max_length=255, blank=True, help_text="GTID of the last transaction delivered.")
    # Live status, refreshed about once a second while the follower runs. Its lag is not
    # here: readers measure it on the followed server (tasks/follow/health.py).
    events = models.PositiveBigIntegerField(default=0, help_text="Row images handled since the follower started.")
    events_per_second = models.FloatField(default=0)
    last_error = models.TextField(blank=True)
    started = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "binlog follower"
        ordering = ["database"]

    def __str__(self):
        return f"{self.database} at {self.log_file}:{self.log_pos}"


class PoolMembership(models.Model):
    """A server list (a cache's LOCATION) that a live process reads through.

    Processes renew their row while they run (engine/topology.py); a reader
    trusts a key only on the server every listed membership routes it to,
    and a row is deleted only after the servers it covered were outdated.
    """

    cache_alias = models.CharField(max_length=100)
    fingerprint = models.CharField(max_length=64)  # of the sorted server list
    servers = models.JSONField(default=list)
    last_seen = models.DateTimeField()

    class Meta:
        verbose_name = "pool membership"
        constraints = [
            models.UniqueConstraint(fields=["cache_alias", "fingerprint"], name="cachelayer_pool_one_per_list"),
        ]

    def __str__(self) -> str:
        return f"{self.cache_alias}: {', '.join(self.servers)}"
