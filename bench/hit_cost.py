"""Quick ratio: a cachelayer pk hit vs a raw cache.get and an ORM objects.get(pk=).

Run:  CACHELAYER_DB=mysql://cachelayer:cachelayer@127.0.0.1:3306/cachelayer \
      CACHELAYER_CACHE=memcached://127.0.0.1:11211 .venv/bin/python bench/hit_cost.py
Interleaved rounds in one run; medians in microseconds. Not part of the test suite.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")

import django  # noqa: E402

django.setup()

from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402

from bench.interleave import compare  # noqa: E402
from demo_project.demo.models import Country  # noqa: E402

ROUNDS, OPS = 7, 2000


def main():
    call_command("migrate", verbosity=0)
    row, _ = Country.objects.get_or_create(country="Benchland", defaults={"population": 1, "area_sq_km": 2})
    cache.set("bench-raw", b"x" * 64)
    Country.cached.get("Benchland")
    contenders = {
        "raw cache.get": lambda: cache.get("bench-raw"),
        "Country.cached.get": lambda: Country.cached.get("Benchland"),
        "Country.objects.get(pk=)": lambda: Country.objects.get(pk=row.pk),
    }
    compare(contenders, "Country.cached.get", ROUNDS, OPS)


if __name__ == "__main__":
    main()
