"""Models the test suite maps; no migrations (created by the test runner)."""

import uuid

from django.db import connection, models

from cachelayer import CachedManager, CachedModelMixin, CachedQuerySet
from tests.testapp.hands import CachedHandField, HandField


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


class Owner(models.Model):
    """A parent whose children are not deleted with it (SET_NULL, SET_DEFAULT, SET())."""

    name = models.CharField(max_length=50)


def fallback_owner():
    return None


class Pet(CachedModelMixin, models.Model):
    """Keeps living when its owner goes: Django's collector updates it with no signal."""

    owner = models.ForeignKey(Owner, null=True, on_delete=models.SET_NULL, related_name="pets")
    keeper = models.ForeignKey(Owner, null=True, default=None, on_delete=models.SET_DEFAULT, related_name="kept")
    sitter = models.ForeignKey(Owner, null=True, on_delete=models.SET(fallback_owner), related_name="sat")
    value = models.IntegerField(default=0)


class Member(CachedModelMixin, models.Model):
    cache_indexes = ("groups",)  # the reverse side of Group.members: its through rows by member

    name = models.CharField(max_length=50)


class Team(CachedModelMixin, models.Model):
    """An m2m whose auto-created through table a container may map (admin)."""

    name = models.CharField(max_length=50)
    members = models.ManyToManyField(Member, related_name="teams")


class Plain(models.Model):
    """No mixin: cached only because a container is added for it (the admin way)."""

    code = models.CharField(max_length=20, unique=True)
    value = models.IntegerField(default=0)


class ManagedQuerySet(CachedQuerySet):
    def positive(self):
        return self.filter(value__gt=0)


class ManagedManager(CachedManager.from_queryset(ManagedQuerySet)):
    """The everyday idiom: a model's own manager, built on cachelayer's queryset."""


class Managed(CachedModelMixin, models.Model):
    """A mixin model with a manager of its own, keyed by a unique column."""

    cache_key_fields = "code"

    code = models.CharField(max_length=20, unique=True)
    value = models.IntegerField(default=0)

    objects = ManagedManager()


class Typed(CachedModelMixin, models.Model):
    """A column of each type whose values must survive a serializer round trip (cache_inspect compares them)."""

    when = models.DateTimeField()
    day = models.DateField()
    at = models.TimeField()
    span = models.DurationField()
    price = models.DecimalField(max_digits=12, decimal_places=2)
    ratio = models.FloatField()
    uid = models.UUIDField()
    data = models.JSONField(null=True)
    blob = models.BinaryField(null=True)


class Post(CachedModelMixin, models.Model):
    """The parent of an index: its comments are read through Comment's index on ``post``."""

    title = models.CharField(max_length=50, default="")


class Topic(models.Model):
    """A parent whose comments keep living when it goes (SET_NULL on an indexed column)."""

    name = models.CharField(max_length=50, default="")


class Comment(CachedModelMixin, models.Model):
    """Indexed by post, by post and status, and by a nullable foreign key."""

    cache_indexes = ("post", ("post", "status"), "topic")

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="comments")
    status = models.CharField(max_length=10, default="open")
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.SET_NULL, related_name="comments")
    value = models.IntegerField(default=0)


class Group(CachedModelMixin, models.Model):
    """An m2m read through the cache: its through rows indexed by group."""

    cache_indexes = ("members",)

    name = models.CharField(max_length=50, default="")
    members = models.ManyToManyField(Member, related_name="groups")


class Place(CachedModelMixin, models.Model):
    """The parent of a multi-table inheritance: a restaurant's row lives in both tables."""

    name = models.CharField(max_length=50, unique=True)
    value = models.IntegerField(default=0)


class Restaurant(Place):
    """A child: its container caches the parent's columns too."""

    seats = models.IntegerField(default=0)


class Bistro(Restaurant):
    """A grandchild, mapped by nothing: its pk (restaurant_ptr) points at its parent's pk,
    itself a parent_ptr."""

    chef = models.CharField(max_length=50, default="")


class Deal(CachedModelMixin, models.Model):
    """A custom field whose values the JSON serializer cannot carry (a Hand), indexed by table."""

    cache_indexes = ("table",)

    table = models.IntegerField(default=0)
    hand = HandField(null=True)


class CachedDeal(CachedModelMixin, models.Model):
    """The same field, declaring how it round-trips (cache_encode / cache_decode)."""

    cache_indexes = ("table",)

    table = models.IntegerField(default=0)
    hand = CachedHandField(null=True)


class Shared(CachedModelMixin, models.Model):
    """A mixin model whose table another model writes too (SharedWriter)."""

    value = models.IntegerField(default=0)

    class Meta:
        db_table = "testapp_shared"


class SharedWriter(models.Model):
    """An unmanaged model on Shared's table, under other field names (a reporting or writer model)."""

    amount = models.IntegerField(db_column="value", default=0)

    class Meta:
        managed = False
        db_table = "testapp_shared"


class Lone(models.Model):
    """Mapped by nothing and related to nothing: Django deletes its rows in one query."""

    value = models.IntegerField(default=0)


class Tag(models.Model):
    """Mapped by nothing: an m2m whose add() Django makes one INSERT."""

    name = models.CharField(max_length=20, default="")
    peers = models.ManyToManyField("self", symmetrical=False, blank=True)


class Tenant(models.Model):
    name = models.CharField(max_length=10, default="")


class TenantUser(models.Model):
    """A composite primary key (Django 5.2), mapped by nothing."""

    pk = models.CompositePrimaryKey("tenant_id", "id")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
    id = models.SmallIntegerField(unique=True)


class TenantComment(models.Model):
    """A nullable composite foreign object: Django 5.2's slow delete path crashes on MariaDB."""

    pk = models.CompositePrimaryKey("tenant", "id")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="comments")
    id = models.SmallIntegerField(unique=True, db_column="comment_id")
    user_id = models.SmallIntegerField(null=True)
    user = models.ForeignObject(
        TenantUser,
        on_delete=models.CASCADE,
        from_fields=("tenant_id", "user_id"),
        to_fields=("tenant_id", "id"),
        related_name="comments",
        null=True,
    )


class Sku(CachedModelMixin, models.Model):
    """Keyed by a char primary key: on MariaDB its collation (utf8mb4_general_ci) makes "ab-1" the row "AB-1"."""

    code = models.CharField(max_length=20, primary_key=True)
    value = models.IntegerField(default=0)


class Wrapper:
    """A primary key's Python value whose ``__str__`` returns no string (Django's custom_pk ``MyWrapper``)."""

    def __init__(self, value):
        self.value = value

    def __str__(self):
        return self.value  # an int: str() raises TypeError

    def __int__(self):
        return int(self.value)

    def __eq__(self, other):
        return self.value == (other.value if isinstance(other, Wrapper) else other)

    def __hash__(self):
        return hash(self.value)


class WrappedAutoField(models.BigAutoField):
    """Reads its values as Wrapper objects; stores them as integers."""

    def from_db_value(self, value, expression, connection):
        return None if value is None else Wrapper(value)

    def get_prep_value(self, value):
        return None if value is None else int(value)


class Wrapped(CachedModelMixin, models.Model):
    """Keyed by a primary key whose values are Wrapper objects."""

    id = WrappedAutoField(primary_key=True)
    value = models.IntegerField(default=0)


class Ticket(CachedModelMixin, models.Model):
    """Keyed by a UUID primary key; its nullable unique column can key a container too."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    ref = models.CharField(max_length=20, null=True, blank=True, unique=True)
    value = models.IntegerField(default=0)


# A collation that holds different strings equal, declared on the column: SQLite's NOCASE
# (cachelayer folds it exactly), MariaDB's utf8mb4_unicode_ci (it cannot: reads go to the database).
LABEL_COLLATION = {"sqlite": "NOCASE", "mysql": "utf8mb4_unicode_ci"}.get(connection.vendor)


class Label(CachedModelMixin, models.Model):
    """Keyed by a unique char column with a collation of its own (db_collation)."""

    cache_key_fields = "code"

    code = models.CharField(max_length=20, unique=True, db_collation=LABEL_COLLATION)
    value = models.IntegerField(default=0)


class Stamped(CachedModelMixin, models.Model):
    """A composite primary key with a part ``pre_save`` fills (Django's composite_pk ``TimeStamped``)."""

    cache_key_fields = "id"

    pk = models.CompositePrimaryKey("id", "created")
    id = models.SmallIntegerField(unique=True)
    created = models.DateTimeField(auto_now_add=True)
    value = models.IntegerField(default=0)


class Priced(CachedModelMixin, models.Model):
    """Keyed by a decimal column; its date and datetime columns key containers too."""

    cache_key_fields = "price"
    cache_indexes = ["day", "at"]

    price = models.DecimalField(max_digits=6, decimal_places=2, unique=True)
    day = models.DateField(unique=True, null=True)
    at = models.DateTimeField(unique=True, null=True)
    value = models.IntegerField(default=0)


class Memo(models.Model):
    """A row cache_set writes whose columns fill themselves as save() fills them."""

    code = models.CharField(max_length=10, unique=True)
    text = models.CharField(max_length=50)
    priority = models.IntegerField(default=3)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    rank = models.IntegerField(db_default=7)


class Seat(CachedModelMixin, models.Model):
    """A composite primary key whose parts are unique only together: its own container is keyed by both."""

    pk = models.CompositePrimaryKey("hall", "number")
    hall = models.CharField(max_length=10)
    number = models.SmallIntegerField()
    value = models.IntegerField(default=0)
