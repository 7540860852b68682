"""The second process of tests/helpers.Worker: one ``CONTAINER KEY`` line in, one answer out."""

import sys

import django

django.setup()

from cachelayer import repository  # noqa: E402
from cachelayer.exceptions import CachelayerError  # noqa: E402

for line in sys.stdin:
    container, key = line.split()
    try:
        answer = repository(container).get(key)
    except CachelayerError as exc:
        answer = type(exc).__name__
    print(answer, flush=True)
