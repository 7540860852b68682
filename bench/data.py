"""The benchmark's data: 10k Items, and which keys each workload uses.

Every process derives the same key sets from the same seed, so each
contender reads exactly the same rows. The sets do not overlap: the writes
of one workload never turn another's hits into misses.
"""

from __future__ import annotations

import datetime
import decimal
import random
from dataclasses import dataclass

ROWS = 10_000
HOT = 1000  # keys the hit workloads cycle through (all cached after warm-up)
BATCH = 100  # keys per get_many
BATCHES = HOT // BATCH  # disjoint batches of the hot keys
WRITES = 200  # rows the write workload saves in turn
RANDOM_BATCHES = 2000  # fresh random get_many batches, more than one run draws
STAMPEDES = 50  # one fresh key per stampede round
ZIPF_S = 1.1  # the read-mostly mix's skew
POSTS = 200  # Items that have comments (the list workload's keys)
COMMENTS_PER_POST = 20


def create_rows() -> None:
    """Make the table hold exactly ROWS known rows (kept between runs when it does)."""
    from bench.items.models import Item

    if Item.objects.count() == ROWS and Item.objects.filter(email=email_of(ROWS - 1)).exists():
        return
    Item.objects.all().delete()
    joined = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    Item.objects.bulk_create(
        [
            Item(
                email=email_of(i),
                name=f"Item number {i}",
                score=i % 997,
                balance=decimal.Decimal(i) / 7,
                joined=joined + datetime.timedelta(minutes=i),
            )
            for i in range(ROWS)
        ],
        batch_size=2000,
    )


def create_comments() -> None:
    """Give each of the first POSTS Items (by pk) exactly COMMENTS_PER_POST comments."""
    from bench.items.models import Comment, Item

    if Comment.objects.count() == POSTS * COMMENTS_PER_POST:
        return
    Comment.objects.all().delete()
    posts = list(Item.objects.order_by("pk").values_list("pk", flat=True)[:POSTS])
    Comment.objects.bulk_create(
        [Comment(post_id=pk, body=f"Comment {n} on {pk}", score=n) for pk in posts for n in range(COMMENTS_PER_POST)],
        batch_size=2000,
    )


def create_counters() -> None:
    """Make the counters table hold exactly WRITES rows (the pk-keyed save workload's)."""
    from bench.items.models import Counter

    if Counter.objects.count() == WRITES:
        return
    Counter.objects.all().delete()
    Counter.objects.bulk_create([Counter(name=f"Counter {i}", score=0) for i in range(WRITES)])


def email_of(i: int) -> str:
    return f"user{i:05d}@example.com"


@dataclass
class Keys:
    hot: list  # pks
    hot_emails: list
    batches: list  # lists of BATCH pks
    writes: list
    stampede: list
    posts: list  # pks of the Items with comments
    all: list  # every pk, in Zipf rank order (most popular first)
    random_batches: list  # RANDOM_BATCHES lists of BATCH hot pks drawn at random, never repeated


def keys() -> Keys:
    from bench.items.models import Item

    rows = list(Item.objects.order_by("pk").values_list("pk", "email"))
    rng = random.Random(20261123)
    shuffled = rows[:]
    rng.shuffle(shuffled)
    hot = shuffled[:HOT]
    rest = [pk for pk, _ in shuffled[HOT:]]
    hot_pks = [pk for pk, _ in hot]
    return Keys(
        hot=hot_pks,
        hot_emails=[email for _, email in hot],
        batches=[hot_pks[i * BATCH : (i + 1) * BATCH] for i in range(BATCHES)],
        writes=rest[:WRITES],
        stampede=rest[WRITES : WRITES + STAMPEDES],
        posts=[pk for pk, _ in rows[:POSTS]],
        all=[pk for pk, _ in shuffled],
        random_batches=[rng.sample(hot_pks, BATCH) for _ in range(RANDOM_BATCHES)],
    )


def zipf_draws(pks: list, count: int, seed: int) -> list:
    """Draw ``count`` keys, the k-th most popular with weight 1/k**ZIPF_S."""
    weights = [1 / (rank + 1) ** ZIPF_S for rank in range(len(pks))]
    return random.Random(seed).choices(pks, weights=weights, k=count)
