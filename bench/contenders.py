"""The contenders: one way each to read and write Items, as its users write it.

Every contender answers the same calls, so a workload is written once:
``get(pk)``, ``get_by_email(email)``, ``get_many(pks)`` (a dict by pk),
``save(item)``, ``load(pk)`` (an instance to modify), ``outdate(pk)``
(make the next read of ``pk`` a miss) and ``comments(pk)`` (the comments of
an Item, by pk, as a list of instances). A contender that cannot do one of
them leaves it out, and the workload skips it.

Which contenders a process has depends on its flavor (bench/suite_settings.py).
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from bench.items.models import Comment, Counter, Item

RAW_PREFIX = "bench:item:"
FLOOR_KEY = "bench:floor"  # the one cache round trip of a save's floor
REFILL_POLICY = "bench refill"  # cachelayer's policy with refill_after_write, for the mix with refill
BY_EMAIL = "cacheditems_by_email"  # cachelayer's container keyed by the unique column
COMMENTS_BY_POST = "cacheditems_cachedcomment__by_post"  # cachelayer's index container on Comment.post


class Contender:
    name = ""

    def save(self, item) -> None:
        item.save()

    def load(self, pk):
        return self.get(pk)


class RawCache(Contender):
    """Django's ``cache.get`` of one key holding the row's values: the physical limit of a hit."""

    name = "raw cache.get"

    def prepare(self, pks) -> None:
        rows = Item.objects.filter(pk__in=pks).values_list(*[f.attname for f in Item._meta.concrete_fields])
        cache.set_many({RAW_PREFIX + str(row[0]): row for row in rows}, timeout=None)

    def get(self, pk):
        return cache.get(RAW_PREFIX + str(pk))

    def get_many(self, pks):
        return cache.get_many([RAW_PREFIX + str(pk) for pk in pks])


class ORM(Contender):
    """The raw ORM: every read is SQL.

    Its ``save_*_floor`` calls are the least a save with invalidation can cost:
    the plain save and one cache round trip, and for a row with a container
    keyed by another column, the read of that column and the transaction
    that holds the row from that read to the write."""

    name = "ORM"

    def counters(self) -> list:
        return list(Counter.objects.order_by("pk"))

    def save_pk_floor(self, counter) -> None:
        counter.save()
        cache.get(FLOOR_KEY)

    def save_floor(self, item) -> None:
        with transaction.atomic():
            list(Item.objects.select_for_update().filter(pk=item.pk).values_list("email"))
            item.save()
        cache.get(FLOOR_KEY)

    def get(self, pk):
        return Item.objects.get(pk=pk)

    def get_by_email(self, email):
        return Item.objects.get(email=email)

    def get_many(self, pks):
        return Item.objects.in_bulk(pks)

    def comments(self, pk):
        return list(Comment.objects.filter(post_id=pk).order_by("pk"))


class Cachelayer(Contender):
    name = "cachelayer"

    def __init__(self):
        from bench.cacheditems.models import CachedComment, CachedCounter, CachedItem

        self.model, self.comment_model, self.counter_model = CachedItem, CachedComment, CachedCounter
        self.by_email = CachedItem.cached.container(BY_EMAIL)

    def prepare(self, pks) -> None:
        """Create the two containers (pk, and the unique email column) once."""
        from django.contrib.contenttypes.models import ContentType

        from cachelayer.engine.registry import container_name
        from cachelayer.models import Container

        content_type = ContentType.objects.get_for_model(self.model, for_concrete_model=False)
        for name, key in ((container_name(self.model), "id"), (BY_EMAIL, "email")):
            Container.objects.get_or_create(name=name, defaults={"content_type": content_type, "key_columns": key})
        counters = ContentType.objects.get_for_model(self.counter_model, for_concrete_model=False)
        Container.objects.get_or_create(
            name=container_name(self.counter_model), defaults={"content_type": counters, "key_columns": "id"}
        )
        comments = ContentType.objects.get_for_model(self.comment_model, for_concrete_model=False)
        Container.objects.get_or_create(
            name=COMMENTS_BY_POST, defaults={"content_type": comments, "key_columns": "post"}
        )

    def get(self, pk):
        return self.model.cached.get(pk)

    def get_by_email(self, email):
        return self.by_email.get(email)

    def get_many(self, pks):
        return self.model.cached.get_many(pks)

    def comments(self, pk):
        return self.comment_model.cached.filter(post=pk)

    def outdate(self, pk) -> None:
        import cachelayer

        cachelayer.invalidate(self.model, [pk])

    def counters(self) -> list:
        return list(self.counter_model.objects.order_by("pk"))

    def refill(self, on: bool) -> None:
        """Put every container of the benchmark under a policy with refill_after_write (or none)."""
        from cachelayer.models import CachePolicy, Container

        policy = CachePolicy.objects.get_or_create(policy_name=REFILL_POLICY, defaults={"refill_after_write": True})[0]
        for container in Container.objects.all():
            container.policy = policy if on else None
            container.save()  # each process reloads the definitions on its next operation


class Cacheops(Contender):
    name = "cacheops"
    lock = False

    def get(self, pk):
        return Item.objects.cache(lock=self.lock).get(pk=pk)

    def get_by_email(self, email):
        return Item.objects.cache(lock=self.lock).get(email=email)

    def get_many(self, pks):
        return Item.objects.cache(lock=self.lock).in_bulk(pks)

    def comments(self, pk):
        return list(Comment.objects.cache(lock=self.lock).filter(post_id=pk).order_by("pk"))

    def outdate(self, pk) -> None:
        from cacheops import invalidate_obj

        invalidate_obj(Item(pk=pk))


class CacheopsLocked(Cacheops):
    """cacheops with its dog-pile lock on (off by default)."""

    name = "cacheops lock=True"
    lock = True


class Cachalot(ORM):
    """cachalot caches every query as it is: the ORM's own calls."""

    name = "cachalot"

    def outdate(self, pk) -> None:
        from cachalot.api import invalidate

        invalidate(Item)


def for_this_process() -> list[Contender]:
    """Return the contenders of this process's flavor."""
    flavor = settings.FLAVOR
    if flavor == "plain":
        return [RawCache(), ORM()]
    if flavor == "cachelayer":
        return [Cachelayer()]
    if flavor == "cacheops":
        return [Cacheops(), CacheopsLocked()]
    return [Cachalot()]
