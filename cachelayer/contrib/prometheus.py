"""Prometheus exposition (the extra ``cachelayer[prometheus]``): mount ``metrics_view``.

Counters are the statistics every process publishes to its cache every
``STATS_INTERVAL`` seconds (engine/stats.py), so a scrape of any one process
serves the sum over all of them, gunicorn's workers included, with no
``PROMETHEUS_MULTIPROC_DIR``. Gauges are measured at scrape time, as
``cache_health`` measures them (tasks/checkup.py).

Nothing is exposed unless a project mounts the view, and then only to a logged-in
staff user or to a request carrying ``Authorization: Bearer <METRICS_TOKEN>``.
"""

from __future__ import annotations

import hmac

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from cachelayer.core import conf
from cachelayer.engine import stats
from cachelayer.engine.registry import registry
from cachelayer.tasks import checkup

COUNTER_HELP = {
    "hits": "Reads answered by the cache",
    "misses": "Reads the cache could not answer",
    "fills": "Rows (or lists) stored after a miss",
    "refills": "Rows (or lists) the writer stored after its write (refill_after_write)",
    "invalidations": "Keys (or generations) outdated by writes",
    "lease_waits": "Reads that waited for another reader's fill",
    "errors": "Cache operations that failed (the database answered)",
    "too_large": "Payloads over the cache's item size limit, not stored",
    "rejected": "Payloads whose MAC failed (read as misses)",
}


class CachelayerCollector:
    """Every container's shared counters, and the health gauges, at each scrape."""

    def collect(self):
        registry.load()
        names = [definition.name for definition in registry.definitions()]
        shared = stats.shared(names)
        for counter in stats.COUNTERS:
            family = CounterMetricFamily(
                f"cachelayer_{counter}", COUNTER_HELP.get(counter, counter), labels=["container"]
            )
            for name in names:
                if "error" not in shared[name]:
                    family.add_metric([name], shared[name][counter])
            yield family
        yield _freshness_gauge(names, shared)
        yield from _health_gauges(checkup.report())


def _freshness_gauge(names: list[str], shared: dict) -> GaugeMetricFamily:
    """The freshness monitor's share of consistent checks per container and delay (cache_monitor)."""
    gauge = GaugeMetricFamily(
        "cachelayer_freshness_ratio",
        "Share of sampled writes the cache served consistently, by seconds after the write (cache_monitor)",
        labels=["container", "delay"],
    )
    for name in names:
        summary = shared[name].get(stats.FRESHNESS)
        for entry in summary["delays"] if summary else ():
            if entry["ratio"] is not None:
                gauge.add_metric([name, f"{entry['delay']:g}"], entry["ratio"])
    return gauge


def _health_gauges(report: dict):
    status = GaugeMetricFamily("cachelayer_health", "0 healthy, 1 degraded, 2 down (as cache_health exits)")
    status.add_metric([], checkup.EXIT_CODES[report["status"]])
    yield status
    up = GaugeMetricFamily("cachelayer_server_up", "1 when the cache server answers a ping", labels=["cache", "server"])
    opened = GaugeMetricFamily(
        "cachelayer_breaker_open", "1 while this process skips the server", labels=["cache", "server"]
    )
    for cache, entry in report.get("caches", {}).items():
        for server, state in entry["servers"].items():
            up.add_metric([cache, server], int(state["reachable"]))
            opened.add_metric([cache, server], int(state["breaker"] == "open"))
    yield up
    yield opened
    outbox = GaugeMetricFamily("cachelayer_outbox_entries", "Invalidations waiting in the outbox", labels=["cache"])
    for cache, entries in report.get("outbox", {}).get("by_cache", {}).items():
        outbox.add_metric([cache], entries)
    yield outbox
    lag = GaugeMetricFamily("cachelayer_follower_lag_seconds", "Binlog follower lag", labels=["database"])
    lag_bytes = GaugeMetricFamily("cachelayer_follower_lag_bytes", "Binlog bytes not processed", labels=["database"])
    for row in report.get("followers", []):
        if row.get("lag_seconds") is not None:
            lag.add_metric([row["database"]], row["lag_seconds"])
        if row.get("lag_bytes") is not None:
            lag_bytes.add_metric([row["database"]], row["lag_bytes"])
    yield lag
    yield lag_bytes


def _allowed(request: HttpRequest) -> bool:
    token = conf.get("METRICS_TOKEN")
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    user = getattr(request, "user", None)
    return bool(user and user.is_active and user.is_staff)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``path("metrics", metrics_view)`` in your urls.py: the text exposition format."""
    if not _allowed(request):
        return HttpResponseForbidden("cachelayer metrics: log in as staff, or send the METRICS_TOKEN bearer token\n")
    collectors = CollectorRegistry(auto_describe=False)
    collectors.register(CachelayerCollector())
    return HttpResponse(generate_latest(collectors), content_type=CONTENT_TYPE_LATEST)
