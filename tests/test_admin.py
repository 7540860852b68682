"""The admin: container form validation, live statistics, warm/flush actions and permissions."""

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command

from cachelayer.engine import stats
from cachelayer.models import CachePolicy, Container
from demo_project.demo.models import Country
from tests.helpers import Worker

CHANGELIST = "/admin/cachelayer/container/"
STATS_PAGE = "/admin/cachelayer/container/stats/"


@pytest.fixture
def countries(backend):
    call_command("loaddata", "demo", verbosity=0)
    return Container.objects.get(name="demo_country")


def _staff(*codenames) -> User:
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="cachelayer", codename__in=codenames))
    return user


def _action(client, action, container, **extra):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [container.pk], **extra}, follow=True)


def _form(model, **columns) -> dict:
    return {
        "name": "mapped",
        "content_type": ContentType.objects.get_for_model(model).pk,
        "enabled": "on",
        "exposed": "on",
        **columns,
    }


def test_form_offers_installed_models_and_their_fields(admin_client, transactional_db):
    page = admin_client.get(f"{CHANGELIST}add/").content.decode()
    assert '<optgroup label="demo.Country">' in page
    assert '<option value="population">population (BigIntegerField)</option>' in page
    assert re.search(r'<option value="\d+">testapp.Pair</option>', page)


@pytest.mark.parametrize(
    "columns, message",
    [
        ({"key_columns": ["country", "population"], "cas_column": "area_sq_km"}, "cas must be a 64-bit integer"),
        ({"key_columns": ["country"], "flags_column": "country"}, "flags must be an integer"),
        ({"key_columns": ["no_such_field"]}, "Select a valid choice"),
        ({"key_columns": ["value"]}, "demo.Country has no column &#x27;value&#x27;"),  # a field of another model
    ],
)
def test_a_bad_mapping_is_a_form_error(admin_client, transactional_db, columns, message):
    response = admin_client.post(f"{CHANGELIST}add/", _form(Country, **columns))
    assert response.status_code == 200 and message in response.content.decode()
    assert not Container.objects.filter(name="mapped").exists()


def test_columns_that_are_not_unique_make_an_index_container(admin_client, transactional_db):
    response = admin_client.post(f"{CHANGELIST}add/", _form(Country, key_columns=["drive_side"]))
    assert response.status_code == 302
    container = Container.objects.get(name="mapped")
    page = admin_client.get(f"{CHANGELIST}{container.pk}/change/").content.decode()
    assert "index container: drive_side is not unique" in page
    assert "index container: drive_side is not unique" in admin_client.get(CHANGELIST).content.decode()


def test_chosen_columns_are_stored_joined(admin_client, transactional_db):
    from tests.testapp.models import Pair

    response = admin_client.post(
        f"{CHANGELIST}add/", _form(Pair, key_columns=["left", "right"], value_columns=["value"])
    )
    assert response.status_code == 302
    assert Container.objects.filter(name="mapped", key_columns="left|right", value_columns="value").exists()


def test_actions_need_their_permissions(client, transactional_db):
    client.force_login(_staff("view_container"))
    page = client.get(CHANGELIST).content.decode()
    assert "Live statistics" in page and "warm_containers" not in page and "flush_containers" not in page
    client.force_login(_staff_with_more("warm_container"))
    page = client.get(CHANGELIST).content.decode()
    assert "warm_containers" in page and "flush_containers" not in page
    container = Container.objects.first()
    refused = _action(client, "flush_containers", container, post="yes").content.decode()
    assert "No action selected." in refused and "every cached key outdated" not in refused


def _staff_with_more(codename) -> User:
    user = User.objects.get(username="staff")
    user.user_permissions.add(Permission.objects.get(codename=codename))
    return User.objects.get(pk=user.pk)  # a fresh permission cache


def _row(page: str, name: str) -> str:
    return re.search(rf"<tr[^>]*>(?:(?!</tr>).)*?>{name}</a>.*?</tr>", page, re.S).group(0)


def test_list_shows_live_statistics(admin_client, countries):
    Country.cached.get("Japan")  # miss, fill
    Country.cached.get("Japan")  # hit
    row = _row(admin_client.get(CHANGELIST).content.decode(), "demo_country")
    for column, text in [("hit_ratio", "50.0%"), ("errors", "0")]:
        assert f'<td class="field-stat_{column}">{text}</td>' in row


def test_stats_page_draws_a_chart(admin_client, countries):
    Country.cached.get_many(["Japan", "Peru"])
    Country.cached.get("Japan")
    page = admin_client.get(STATS_PAGE).content.decode()
    assert '<svg class="cl-chart" id="stats-chart"' in page
    bar = re.search(r'<rect class="cl-hits" x="0" y="16" width="(\d+)"', page)
    assert bar and int(bar.group(1)) == 160  # 1 hit of 3 lookups, on a 480 px scale
    assert "3 lookups, 33.3% hits" in page


def test_stats_page_needs_view_permission(client, transactional_db):
    client.force_login(User.objects.create_user("nobody", password="pw", is_staff=True))
    assert client.get(STATS_PAGE).status_code == 403


def test_warm_action_confirms_then_warms(admin_client, countries, django_assert_num_queries):
    page = _action(admin_client, "warm_containers", countries).content.decode()
    assert "load 10 rows of demo.Country into cache" in page and "Yes, warm" in page
    page = _action(admin_client, "warm_containers", countries, post="yes").content.decode()
    assert "Container demo_country: 10 rows warmed, 0 already cached, 0 skipped (too large)" in page
    with django_assert_num_queries(0):
        assert Country.cached.get("Japan").population == 125700000


def test_flush_action_outdates_and_spells_out_truncation(admin_client, countries, django_assert_num_queries):
    Country.cached.get("Japan")
    page = _action(admin_client, "flush_containers", countries).content.decode()
    assert "every cached key becomes a miss; rows untouched" in page and "DELETE" not in page
    page = _action(admin_client, "flush_containers", countries, post="yes").content.decode()
    assert "Container demo_country: every cached key outdated" in page
    with django_assert_num_queries(1):  # outdated: read again
        Country.cached.get("Japan")
    countries.policy = CachePolicy.objects.create(policy_name="truncating", flush_policy="caching")
    countries.save()
    page = _action(admin_client, "flush_containers", countries).content.decode()
    assert "also DELETE all 10 rows of table demo_country (flush_policy caching); this cannot be undone" in page
    page = _action(admin_client, "flush_containers", countries, post="yes", truncate=[countries.pk]).content.decode()
    assert "10 rows deleted from demo_country" in page
    assert not Country.objects.exists()


def test_truncating_needs_the_models_delete_permission(client, countries):
    countries.policy = CachePolicy.objects.create(policy_name="truncating", flush_policy="caching")
    countries.save()
    client.force_login(_staff("view_container", "flush_container"))
    page = _action(client, "flush_containers", countries).content.decode()
    assert "truncating the table would need demo.delete_country" in page and 'name="truncate"' not in page
    page = _action(client, "flush_containers", countries, post="yes", truncate=[countries.pk]).content.decode()
    assert "it needs the permission demo.delete_country, which &#x27;staff&#x27; does not have" in page
    assert Country.objects.count() == 10  # nothing deleted (and the cache left as it was)
    user = User.objects.get(username="staff")
    user.user_permissions.add(Permission.objects.get(codename="delete_country"))
    client.force_login(User.objects.get(pk=user.pk))  # a fresh user: no permission cache
    assert 'name="truncate"' in _action(client, "flush_containers", countries).content.decode()
    page = _action(client, "flush_containers", countries, post="yes", truncate=[countries.pk]).content.decode()
    assert "10 rows deleted from demo_country" in page and not Country.objects.exists()


def test_an_admin_edit_reaches_another_process(admin_client, countries, backend):
    """Edit a policy in the admin: a running process obeys it on its next read.

    Also: each process counts in memory (STATS_INTERVAL is long here) and
    publishes at exit, and the shared counters add up both processes.
    """
    if backend == "locmem":
        pytest.skip("a LocMem cache is not shared between processes")
    policy = CachePolicy.objects.create(policy_name="strict")
    countries.policy = policy
    countries.save()
    worker = Worker(STATS_INTERVAL=3600)
    try:
        assert worker.get("demo_country", "Japan") == "125700000|377975|L"  # miss, fill
        assert worker.get("demo_country", "Japan") == "125700000|377975|L"  # hit
        response = admin_client.post(
            f"/admin/cachelayer/cachepolicy/{policy.pk}/change/",
            {
                "policy_name": "strict",
                "get_policy": "disabled",
                "set_policy": "caching",
                "delete_policy": "caching",
                "flush_policy": "cache_only",
            },
        )
        assert response.status_code == 302
        assert worker.get("demo_country", "Japan") == "OperationDisabled"
        assert stats.shared(["demo_country"])["demo_country"]["hits"] == 0  # not published yet
    finally:
        assert worker.stop() == 0
    policy.get_policy = "caching"
    policy.save()
    Country.cached.get("Japan")  # this process: a hit on the worker's fill
    shared = stats.shared(["demo_country"])["demo_country"]
    assert (shared["hits"], shared["misses"], shared["fills"]) == (2, 1, 1)


def test_the_policy_form_offers_refill_after_write(admin_client, countries):
    page = admin_client.get("/admin/cachelayer/cachepolicy/add/").content.decode()
    assert re.search(r'<input type="checkbox" name="refill_after_write"[^>]*id="id_refill_after_write"', page)
    fields = {
        "get_policy": "caching",
        "set_policy": "caching",
        "delete_policy": "caching",
        "flush_policy": "cache_only",
    }
    response = admin_client.post(
        "/admin/cachelayer/cachepolicy/add/", {"policy_name": "hot", "refill_after_write": "on", **fields}
    )
    assert response.status_code == 302
    countries.policy = CachePolicy.objects.get(policy_name="hot")
    countries.save()
    Country.cached.get("Japan")  # loads the edited definitions
    japan = Country.objects.get(country="Japan")
    japan.population += 1
    japan.save()
    assert stats.snapshot()["demo_country"]["refills"] == 1
