"""The freshness monitor (cache_monitor): staleness injected behind the cache for real
(raw SQL sends no signal), on every cache, with delays of a fraction of a second."""

import json
import re
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from cachelayer.engine import samples, stats
from cachelayer.engine.registry import registry
from cachelayer.tasks import checkup
from cachelayer.tasks.monitoring import Monitor
from tests.test_inspect import STATS_PAGE, raw_sql
from tests.test_prometheus import scrape, value
from tests.testapp.models import Item

RUN = 2.0  # s: the last delay, with room for a busy machine (the checks of the last writes must come due)


@pytest.fixture
def monitored(sampled):
    """Five rows, cached, their writes sampled (``sampled``)."""
    rows = [Item.objects.create(id=i, value=i * 10) for i in range(1, 6)]
    Item.cached.get_many([row.pk for row in rows])
    return rows


def shares(summary) -> dict:
    return {entry["delay"]: (entry["consistent"], entry["checked"]) for entry in summary["delays"]}


def test_stale_entries_behind_the_cache_are_reported_within_the_window(monitored):
    monitor = Monitor(["testapp_item"])
    for row in monitored[:3]:  # committed writes (sampled), then read back into the cache
        row.value += 1
        row.save()
        assert Item.cached.get(row.pk).value == row.value
    raw_sql("UPDATE TABLE SET value = %s WHERE id = %s", 999, 2)  # no invalidation: key 2 is stale
    monitor.run(RUN)
    summary = stats.shared(["testapp_item"])["testapp_item"][stats.FRESHNESS]
    assert shares(summary) == {0.3: (2, 3), 0.6: (2, 3)}
    assert summary["delays"][1]["nines"] == "66%" and summary["skipped"] == 0
    assert {(e["key"], e["delay"], e["verdict"]) for e in summary["stale"]} == {
        ("2", 0.3, "stale"),
        ("2", 0.6, "stale"),
    }
    report = checkup.report()
    assert report["status"] == checkup.DEGRADED
    assert (
        "container testapp_item: 66% of 3 checks consistent within 0.6 s (target 99.900%) (cache_monitor)"
        in (report["problems"])
    )
    staff = User.objects.create_user("ops", is_staff=True)
    text = scrape(staff).content.decode()
    assert value(text, "cachelayer_freshness_ratio", container="testapp_item", delay="0.6") == pytest.approx(2 / 3)


def test_a_fresh_workload_reports_every_check_consistent(monitored):
    monitor = Monitor(["testapp_item"])
    for row in monitored:
        row.value += 1
        row.save()
        Item.cached.get(row.pk)
    Item.objects.filter(pk__in=[1, 2]).update(value=7)  # a queryset path too
    Item.objects.get(pk=5).delete()
    monitor.run(RUN)
    summary = stats.freshness(["testapp_item"])["testapp_item"]
    assert shares(summary) == {0.3: (8, 8), 0.6: (8, 8)}  # five saves, two updated keys, a delete
    assert [entry["nines"] for entry in summary["delays"]] == ["100%", "100%"]
    assert checkup.report()["status"] == checkup.HEALTHY


def test_the_monitor_reads_without_filling(monitored, django_assert_num_queries):
    monitor = Monitor(["testapp_item"])
    Item.objects.filter(pk=1).update(value=11)  # invalidated, not read again: a miss
    monitor.run(RUN)
    assert shares(stats.freshness(["testapp_item"])["testapp_item"]) == {0.3: (1, 1), 0.6: (1, 1)}
    with django_assert_num_queries(1):  # still a miss: the checks filled nothing
        assert Item.cached.get(1).value == 11


def test_checks_past_the_query_budget_are_skipped_and_counted(monitored, settings):
    # One query per 20 s: the budget holds one batch (2 queries) and refills it only after 40 s,
    # however long a loaded machine takes between the two batches.
    settings.CACHELAYER = {**settings.CACHELAYER, "MONITOR_QUERIES_PER_SECOND": 0.05, "MONITOR_DELAYS": [0.3]}
    monitor = Monitor(["testapp_item"])
    Item.objects.filter(pk=1).update(value=11)
    monitor.run(0.45)  # the first batch spends the budget ...
    Item.objects.filter(pk=2).update(value=12)
    monitor.run(0.45)  # ... so this one finds a fraction of a query's worth
    summary = monitor.windows["testapp_item"].summary(0)
    assert shares(summary) == {0.3: (1, 1)} and summary["skipped"] == 1


def test_off_by_default_nothing_is_published(backend):
    item = Item.objects.create(value=1)
    item.value = 2
    item.save()
    assert not samples.read(registry.get("testapp_item"))


def test_the_admin_stats_page_and_the_command_show_it(monitored, admin_client):
    out = StringIO()
    call_command("cache_monitor", "testapp_item", "--duration", "0", stdout=out, stderr=StringIO())
    assert re.search(r"testapp_item: .* UTC: no write sampled yet\n", out.getvalue())
    monitor = Monitor(["testapp_item"])
    Item.objects.filter(pk=1).update(value=11)
    monitor.run(RUN)
    page = admin_client.get(STATS_PAGE).content.decode()
    assert "<th>freshness (cache_monitor)</th>" in page
    assert 'aria-label="freshness of testapp_item over the last 3600 s"' in page
    assert re.search(
        r'<polyline stroke="#[0-9a-f]{6}" points="([\d.]+,0\.0) \1"><title>100% within 0\.3 s</title>', page
    )


def test_the_command_warns_when_nothing_is_sampled(backend):
    err = StringIO()
    call_command("cache_monitor", "--duration", "0", stdout=StringIO(), stderr=err)
    assert "MONITOR_SAMPLE_RATE is 0 in these settings" in err.getvalue()
    assert json.loads(json.dumps(stats.freshness(["testapp_item"])))["testapp_item"]["delays"][0]["checked"] == 0
