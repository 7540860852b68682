"""The demo site: the country page reads through the cache layer; the admin answers."""

import uuid

import pytest
from django.core.management import call_command

from demo_project.demo.models import Country


@pytest.fixture
def demo_data(transactional_db, settings):
    settings.CACHELAYER = {"KEY_PREFIX": f"demo{uuid.uuid4().hex[:8]}"}  # an empty key space
    call_command("loaddata", "demo", verbosity=0)


def test_country_page(client, demo_data, django_assert_num_queries):
    response = client.get("/countries/Japan/")
    assert response.status_code == 200
    assert b'<dd id="population">125700000</dd>' in response.content
    with django_assert_num_queries(0):  # the page filled the cache
        assert Country.cached.get("Japan").population == 125700000
    Country.objects.filter(country="Japan").update(population=5)
    assert b'<dd id="population">5</dd>' in client.get("/countries/Japan/").content


def test_unknown_country_is_404(client, demo_data):
    assert client.get("/countries/Atlantis/").status_code == 404


def test_admin_login_page(client, transactional_db):
    response = client.get("/admin/login/")
    assert response.status_code == 200 and b"Log in" in response.content


def test_check_reports_a_broken_container(transactional_db):
    from django.contrib.contenttypes.models import ContentType
    from django.core.checks import run_checks

    from cachelayer.models import Container

    Container.objects.create(
        name="broken", content_type=ContentType.objects.get_for_model(Country), key_columns="country|no_such_column"
    )
    Container.objects.create(
        name="by_population", content_type=ContentType.objects.get_for_model(Country), key_columns="population"
    )
    found = run_checks(include_deployment_checks=False, databases=["default"])
    errors = [e for e in found if e.id == "cachelayer.E010"]
    assert [e.msg for e in errors] == ["Container 'broken': key_columns: demo.Country has no column 'no_such_column'."]
    notes = [e.msg for e in found if e.id == "cachelayer.I010" and e.obj.name == "by_population"]
    assert notes and notes[0].startswith("Container 'by_population' is an index container: population is not unique")
