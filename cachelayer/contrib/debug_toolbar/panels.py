"""The "Cache layer" panel: what cachelayer did for one request.

Every read of a key (hit or miss), with its container, and every
invalidation (container and keys), in order, with the SQL queries the hits
saved and the cache round trips the request made. Collected through
cachelayer's signals and the adapters' round-trip count by a per-request
recording (cachelayer.contrib.recording), never by patching.
"""

from __future__ import annotations

from debug_toolbar.panels import Panel
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from cachelayer.contrib.recording import HIT, INVALIDATED, MISS, Recording


class CachelayerPanel(Panel):
    title = _("Cache layer")
    nav_title = _("Cache layer")
    template = "cachelayer/debug_toolbar/panel.html"
    is_async = True  # the recording follows asyncio tasks as well as threads

    @property
    def nav_subtitle(self) -> str:
        stats = self.get_stats()
        hits, misses = stats.get("hits", 0), stats.get("misses", 0)
        subtitle = ngettext("%(n)d hit", "%(n)d hits", hits) % {"n": hits}
        subtitle += ", " + ngettext("%(n)d miss", "%(n)d misses", misses) % {"n": misses}
        if stats.get("invalidations"):
            n = stats["invalidations"]
            subtitle += ", " + ngettext("%(n)d invalidation", "%(n)d invalidations", n) % {"n": n}
        n = stats.get("round_trips", 0)
        return subtitle + ", " + ngettext("%(n)d round trip", "%(n)d round trips", n) % {"n": n}

    def enable_instrumentation(self) -> None:
        self.recording = Recording().start()

    def disable_instrumentation(self) -> None:
        if hasattr(self, "recording"):
            self.recording.stop()

    def generate_stats(self, request, response) -> None:
        recording = getattr(self, "recording", None) or Recording()
        hits = recording.count(HIT)
        self.record_stats(
            {
                "events": [event.as_dict() for event in recording.events],
                "hits": hits,
                "misses": recording.count(MISS),
                "invalidations": recording.count(INVALIDATED),
                "queries_saved": hits,  # each hit is one `SELECT ... WHERE key = %s` the ORM would have run
                "round_trips": recording.round_trips,
                "containers": sorted({event.container for event in recording.events}),
            }
        )
