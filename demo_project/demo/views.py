"""Pages of the demo site.

The country page shows what the cache layer did for this very request: each
read, hit or miss (recorded from cachelayer's signals), its SQL queries and
time, against the same read through the plain ORM. Its form saves a change;
the next view shows the invalidation that save caused and the row version it
moved.
"""

import time

from django.apps import apps
from django.db import connection
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.test.utils import CaptureQueriesContext

from cachelayer.contrib.recording import INVALIDATED, Recording
from demo_project.demo.forms import CountryForm
from demo_project.demo.models import Country
from demo_project.demo.versions import row_version

LAST_WRITE = "demo_last_write"  # session key: what the last save invalidated


def country_list(request):
    countries = Country.objects.order_by("country").values_list("country", flat=True)
    return render(
        request, "demo/country_list.html", {"countries": countries, "toolbar": apps.is_installed("debug_toolbar")}
    )


def measured(read):
    """Run ``read()``; return its result, the SQL queries it ran, its time (ms) and its cachelayer events."""
    with Recording() as recording, CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        try:
            result = read()
        except Country.DoesNotExist:
            result = None
        elapsed = (time.perf_counter() - started) * 1000
    return result, {"queries": len(queries), "ms": elapsed, "events": recording.events}


def country_detail(request, name):
    if request.method == "POST":
        return _save(request, name)
    country, cached = measured(lambda: Country.cached.get(name))
    if country is None:
        raise Http404(f"No country named {name!r}") from None
    _, plain = measured(lambda: Country.objects.get(country=name))
    cached["outcome"] = " + ".join(event.kind for event in cached["events"]) or "-"
    context = {
        "country": country,
        "cached": cached,
        "plain": plain,
        "version": row_version(Country, name),
        "form": CountryForm(instance=country),
        "last_write": request.session.pop(LAST_WRITE, None),
        "toolbar": apps.is_installed("debug_toolbar"),
    }
    return render(request, "demo/country_detail.html", context)


def _save(request, name):
    country = Country.objects.filter(country=name).first()
    if country is None:
        raise Http404(f"No country named {name!r}") from None
    form = CountryForm(request.POST, instance=country)
    if not form.is_valid():
        return render(request, "demo/country_detail.html", {"country": country, "form": form}, status=400)
    before = row_version(Country, name)
    with Recording() as recording:
        form.save()  # autocommit: the invalidation runs as the save commits
    request.session[LAST_WRITE] = {
        "invalidated": [event.as_dict() for event in recording.events if event.kind == INVALIDATED],
        "version_before": before,
        "version_after": row_version(Country, name),
        "fields": form.changed_data,
    }
    return redirect("country-detail", name=name)


async def country_json(request, name):
    """An async view: ``await Country.cached.aget(name)``; a hit runs no SQL."""
    try:
        country = await Country.cached.aget(name)
    except Country.DoesNotExist:
        raise Http404(f"No country named {name!r}") from None
    fields = ("country", "population", "area_sq_km", "drive_side")
    return JsonResponse({field: getattr(country, field) for field in fields})
