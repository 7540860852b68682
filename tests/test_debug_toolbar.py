"""The debug toolbar's own Cache panel beside cachelayer's Cache layer panel.

The Cache panel counts calls to Django's cache objects (``caches[alias]``) of
the request's thread, by wrapping their methods while the request runs.
cachelayer reads memcached and Redis through long-lived clients of its own,
and LocMem through the cache object of the thread that built its adapter, so
that panel sees none of cachelayer's round trips ("0 calls" in a user's
project); the Cache layer panel counts them and says why the other does not
(README: Debug toolbar panel). The request runs in a thread of its own, as on
a threaded server, so the toolbar wraps only that thread's cache objects.
"""

import threading

import pytest
from django.apps import apps
from django.core.cache import caches
from django.db import connections
from django.http import HttpResponse
from django.test import RequestFactory

from tests.testapp.models import Item

PANELS = ["debug_toolbar.panels.cache.CachePanel", "cachelayer.contrib.debug_toolbar.panels.CachelayerPanel"]


def through_the_toolbar(view, alias: str):
    """Serve ``view`` as DebugToolbarMiddleware does, in a new thread; return the toolbar."""
    from debug_toolbar.toolbar import DebugToolbar

    done: dict = {}

    def serve():
        try:
            caches[alias]  # the view's own cache object exists before the toolbar wraps this thread's
            request = RequestFactory().get("/")
            toolbar = DebugToolbar(request, view)
            for panel in toolbar.enabled_panels:
                panel.enable_instrumentation()
            try:
                response = toolbar.process_request(request)
            finally:
                for panel in reversed(toolbar.enabled_panels):
                    panel.disable_instrumentation()
            for panel in toolbar.enabled_panels:
                panel.generate_stats(request, response)
            done["toolbar"] = toolbar
        except BaseException as exc:  # raised again in the test's thread
            done["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join(timeout=60)
    if "error" in done:
        raise done["error"]
    return done["toolbar"]


def test_the_toolbars_cache_panel_sees_no_cachelayer_round_trip(backend, settings):
    if not apps.is_installed("debug_toolbar"):
        pytest.fail("django-debug-toolbar is not installed (requirements.txt has it; DJANGO_DEBUG=0 leaves it out)")
    settings.DEBUG_TOOLBAR_PANELS = PANELS
    item = Item.objects.create(value=9)
    Item.cached.get(item.pk)  # filled (and the adapter built) in the test's thread

    def view(request):
        assert Item.cached.get(item.pk).value == 9  # a hit: one round trip through cachelayer's client
        caches[backend].get("cachelayer-toolbar-probe")  # one call through Django's cache object
        return HttpResponse("ok")

    toolbar = through_the_toolbar(view, backend)
    django_cache = toolbar.get_panel_by_id("CachePanel")
    assert [call["name"] for call in django_cache.get_stats()["calls"]] == ["get"]  # the view's own call only
    assert django_cache.nav_subtitle.startswith("1 call ")
    layer = toolbar.get_panel_by_id("CachelayerPanel")
    stats = layer.get_stats()
    assert (stats["hits"], stats["misses"]) == (1, 0) and stats["round_trips"] >= 1
    assert "The toolbar's Cache panel does not see them" in layer.content
