"""The demo's async view, served by Django's AsyncClient: ``await Country.cached.aget``.

The request runs under ``async_to_sync``, so the view's thread-sensitive read
comes back to this thread and its database connection, where the query
counts below look.
"""

import uuid

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from demo_project.demo.models import Country


@pytest.fixture
def demo_data(transactional_db, settings):
    settings.CACHELAYER = {"KEY_PREFIX": f"demo{uuid.uuid4().hex[:8]}"}
    from django.core.management import call_command

    call_command("loaddata", "demo", verbosity=0)


def get(path):
    return async_to_sync(AsyncClient().get)(path)


def test_async_view_serves_hits_without_sql(demo_data, django_assert_num_queries, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):  # the miss: the row, the container definitions, the outbox
        first = get("/api/countries/Japan/")
    assert first.status_code == 200 and first.json()["population"] == 125700000
    with django_assert_num_queries(0):
        second = get("/api/countries/Japan/")
    assert second.json() == first.json()
    Country.objects.filter(country="Japan").update(population=7)
    with django_assert_num_queries(1):
        assert get("/api/countries/Japan/").json()["population"] == 7


def test_async_view_404(demo_data):
    assert get("/api/countries/Atlantis/").status_code == 404
