"""A process running one release of tests/deployapp: ``python -m tests.deployapp.worker``
(DJANGO_SETTINGS_MODULE picks the release). One JSON command per line in, one
JSON answer per line out:

  {"op": "writes", "seed": S, "count": N}  N random writes (creates, saves, deletes,
                                            QuerySet.update, update_or_create), committed
  {"op": "churn", "seed": S}               the same writes, with reads, in a thread until "stop"
  {"op": "stop"}                           stop the churn; answers how many writes it made
  {"op": "check"}                          every container of Product: what its cached reads
                                            give against the database, and cache_inspect's verdict
"""

import json
import random
import sys
import threading
from decimal import Decimal

import django

django.setup()

from django.apps import apps  # noqa: E402
from django.core.signals import request_finished, request_started  # noqa: E402
from django.db import IntegrityError, connections  # noqa: E402

from cachelayer.engine.registry import registry  # noqa: E402
from cachelayer.tasks.inspection import inspect  # noqa: E402

Product = apps.get_model("deployapp", "Product")
SKUS = [f"s{n}" for n in range(12)]
CATEGORIES = ["tea", "coffee", "cocoa"]
PRICES = [Decimal("1.235"), Decimal("2.5"), Decimal("0.125"), Decimal("7")]
CANDIDATES = {"category": CATEGORIES, "shelf": [1, 2, 3]}  # list keys checked, beside those rows hold
HAS_SHELF = any(field.name == "shelf" for field in Product._meta.fields)  # the second release


def write(rng: random.Random) -> None:
    """One committed write of a random kind; a unique-key collision is a rolled-back write."""
    sku, category, price = rng.choice(SKUS), rng.choice(CATEGORIES), rng.choice(PRICES)
    kind = rng.choice(["create", "save", "save", "delete", "update", "or_create"])
    row = Product.objects.filter(sku=sku).first()
    try:
        if kind == "create" or row is None:
            Product.objects.create(sku=sku, price=price, category=category)
        elif kind == "save":
            row.price, row.category = price, category
            if HAS_SHELF:
                row.shelf = rng.choice([1, 2])
            row.save()
        elif kind == "delete":
            row.delete()
        elif kind == "update":
            Product.objects.filter(category=row.category).update(price=price)
        else:
            Product.objects.update_or_create(sku=sku, defaults={"category": category, "price": price})
    except IntegrityError:
        pass


def read(rng: random.Random) -> None:
    """Fill the cache as the release's read paths do."""
    if rng.random() < 0.5:
        Product.cached.get_many(list(Product.objects.values_list("pk", flat=True)))
    else:
        Product.cached.filter(category=rng.choice(CATEGORIES))


def new_request() -> None:
    request_finished.send(sender=None)
    request_started.send(sender=None)


def check() -> dict:
    """Compare every container of Product's cached reads with the database's."""
    new_request()
    registry.load()
    stale, checked = [], 0
    ids = list(Product.objects.values_list("pk", flat=True))
    candidates = sorted(set(ids) | set(range(1, max(ids, default=0) + 3)))
    for definition in registry.by_model.get(Product._meta.label_lower, []):
        if not definition.enabled:
            continue
        names = [field.name for field in definition.key_fields]
        if not definition.is_index:
            cached = {
                row.pk: row_of(row) for row in Product.cached.container(definition.name).get_many(candidates).values()
            }
            fresh = {row.pk: row_of(row) for row in Product.objects.filter(pk__in=candidates)}
            if cached != fresh:
                stale.append({"container": definition.name, "cached": cached, "database": fresh})
            checked += len(candidates)
        else:
            for value in sorted({*Product.objects.values_list(*names, flat=True), *CANDIDATES[names[0]]}):
                cached = [row_of(row) for row in Product.cached.filter(**{names[0]: value})]
                fresh = [row_of(row) for row in Product.objects.filter(**{names[0]: value}).order_by("pk")]
                if cached != fresh:
                    stale.append({"container": definition.name, "key": value, "cached": cached, "database": fresh})
                checked += 1
        result = inspect(definition)
        if not result.ok:
            stale.append({"container": definition.name, "inspect": result.as_dict()})
    return {"checked": checked, "stale": stale, "containers": sorted(d.name for d in registry.by_name.values())}


def row_of(row) -> list:
    return [str(getattr(row, field.attname)) for field in Product._meta.concrete_fields]


class Churn(threading.Thread):
    def __init__(self, seed: int):
        super().__init__(daemon=True)
        self.rng, self.done, self.writes = random.Random(seed), threading.Event(), 0

    def run(self):
        try:
            while not self.done.is_set() and self.writes < 10_000:
                write(self.rng)
                self.writes += 1
                read(self.rng)
                new_request()
        finally:
            connections.close_all()


def main() -> None:
    churn = None
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        if op == "writes":
            rng = random.Random(command["seed"])
            for _ in range(command["count"]):
                write(rng)
                read(rng)
            answer: dict = {"ok": True}
        elif op == "churn":
            churn = Churn(command["seed"])
            churn.start()
            answer = {"ok": True}
        elif op == "stop":
            assert churn is not None
            churn.done.set()
            churn.join(timeout=60)
            answer = {"writes": churn.writes, "alive": churn.is_alive()}
        else:
            answer = check()
        print(json.dumps(answer, default=str), flush=True)


main()
