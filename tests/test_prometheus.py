"""cachelayer.contrib.prometheus: counters summed over processes, health gauges,
and nothing served to a request that is neither staff nor holds the token."""

import re

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.test import RequestFactory

from cachelayer.contrib.prometheus import metrics_view
from tests.helpers import Worker
from tests.testapp.models import Item


def scrape(user=None, **headers):
    request = RequestFactory().get("/metrics", **headers)
    request.user = user or AnonymousUser()
    return metrics_view(request)


def value(text: str, metric: str, **labels) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    labelled = rf"\{{{re.escape(wanted)}\}}" if labels else ""
    match = re.search(rf"^{metric}{labelled} (\S+)$", text, re.M)
    assert match, f"{metric}{{{wanted}}} not in the exposition"
    return float(match.group(1))


@pytest.mark.caches("memcached", "redis")  # a cache the other process shares
def test_counters_are_summed_over_processes(backend, settings):
    settings.CACHELAYER = {**settings.CACHELAYER, "STATS_INTERVAL": 0}  # publish at once
    items = [Item.objects.create(value=i) for i in range(3)]
    for item in items:
        Item.cached.get(item.pk)  # here: 3 misses (or fills), then 3 hits
        Item.cached.get(item.pk)
    worker = Worker(STATS_INTERVAL=0)
    try:
        for item in items:  # there: 3 hits
            assert worker.get("testapp_item", str(item.pk)) != "None"
    finally:
        assert worker.stop() == 0
    staff = User.objects.create_user("ops", is_staff=True)
    response = scrape(staff)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert value(text, "cachelayer_hits_total", container="testapp_item") == 6  # 3 here + 3 there
    assert value(text, "cachelayer_misses_total", container="testapp_item") == 3
    assert value(text, "cachelayer_health") == 0
    assert (
        value(
            text,
            "cachelayer_server_up",
            cache=backend,
            server=text.split(f'cache="{backend}",server="')[1].split('"')[0],
        )
        == 1
    )


def test_nobody_but_staff_or_the_token_holder_reads_it(transactional_db, settings):
    assert scrape().status_code == 403
    assert scrape(User.objects.create_user("someone")).status_code == 403
    assert scrape(HTTP_AUTHORIZATION="Bearer guess").status_code == 403  # no token set: no token works
    settings.CACHELAYER = {**settings.CACHELAYER, "METRICS_TOKEN": "s3cret"}
    assert scrape(HTTP_AUTHORIZATION="Bearer guess").status_code == 403
    assert scrape(HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
