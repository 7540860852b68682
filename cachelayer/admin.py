"""Admin pages for containers, cache policies and config options.

Saves go through the models' clean(), which shares its validators with the
system checks, so a bad mapping is a form error, never a 500. Containers
have live statistics (in the list and on a stats page with a chart) and the
actions "warm" and "flush", each behind its own permission and a
confirmation page.
"""

from __future__ import annotations

import math

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from cachelayer.core import conf
from cachelayer.core.mapping import index_note
from cachelayer.engine import stats
from cachelayer.engine.registry import registry
from cachelayer.exceptions import CachelayerError, OperationDisabled
from cachelayer.forms import ContainerForm
from cachelayer.models import CachePolicy, ConfigOption, Container
from cachelayer.tasks import flushing, warming
from cachelayer.tasks.follow import progress as follower_progress

STAT_COLUMNS = (  # (statistic, column title)
    ("hits", "hits"),
    ("misses", "misses"),
    ("hit_ratio", "hit ratio"),
    ("fills", "fills"),
    ("refills", "refills"),
    ("invalidations", "invalidations"),
    ("lease_waits", "lease waits"),
    ("errors", "errors"),
    ("rejected", "rejected payloads"),
    (stats.LAST_FLUSH, "last flush"),
)
STATS_PAGE_COLUMNS = (  # then cache_inspect's last run, and cache_monitor's rolling shares
    *STAT_COLUMNS,
    (stats.LAST_INSPECTION, "last inspection"),
    (stats.FRESHNESS, "freshness (cache_monitor)"),
)
# The container list shows these at a glance (the stats page, one click away, shows all).
LIST_STAT_COLUMNS = tuple(c for c in STAT_COLUMNS if c[0] in ("hit_ratio", "errors"))
CHART_WIDTH = 480  # px of the longest bar on the stats page
CHART_ROW = 40  # px per container in the chart: its name, then its bar


def _stat_column(name: str, title: str, counts: dict):
    def column(container):
        values = counts.get(container.name, {})
        return "error" if "error" in values else stats.display(name, values.get(name))

    column.short_description = title  # type: ignore[attr-defined]  # the admin's column-title attribute on a function
    column.__name__ = f"stat_{name}"  # the cells' CSS class: field-stat_hits, ...
    return column


def _cell(name: str, value):
    """One statistic on the stats page; the last inspection in a few words, in full as its tooltip."""
    text = stats.display(name, value)
    if name != stats.LAST_INSPECTION or value is None:
        return text
    return format_html('<span title="{}">{} stale of {} checked</span>', text, value["stale"], value["checked"])


def _chart(names: list[str], counts: dict) -> list[dict]:
    """Return one bar per container: hits and misses, scaled to the busiest container."""
    lookups = {n: counts[n].get("hits", 0) + counts[n].get("misses", 0) for n in names}
    scale = CHART_WIDTH / max([*lookups.values(), 1])
    return [
        {
            "name": name,
            "y": index * CHART_ROW,
            "hits": round(counts[name].get("hits", 0) * scale),
            "misses": round(counts[name].get("misses", 0) * scale),
            "label": f"{lookups[name]} lookups, {stats.display('hit_ratio', counts[name].get('hit_ratio'))} hits",
        }
        for index, name in enumerate(names)
    ]


FRESHNESS_WIDTH, FRESHNESS_HEIGHT = 480, 100  # px of one container's freshness chart
MOST_NINES = 5  # the chart's top: 99.999% and better
DELAY_COLOURS = ("#1565c0", "#2e7d32", "#6a1b9a", "#ef6c00")


def _nines_y(ratio: float) -> float:
    """Return the height of a share on a nines scale: 90% is one nine, 99% two, 100% the top."""
    found = MOST_NINES if ratio >= 1 else min(MOST_NINES, -math.log10(1 - ratio))
    return round(FRESHNESS_HEIGHT * (1 - found / MOST_NINES), 1)


def _freshness_charts(names: list[str], counts: dict) -> list[dict]:
    """Return, per container cache_monitor published, one line per delay over its window (points of an SVG polyline)."""
    charts = []
    for name in names:
        summary = counts[name].get(stats.FRESHNESS)
        if not summary or not summary["history"]:
            continue
        start, window = summary["updated"] - summary["window"], summary["window"]
        lines = []
        for position, entry in enumerate(summary["delays"]):
            points = [
                f"{round((point['at'] - start) / window * FRESHNESS_WIDTH, 1)},{_nines_y(point['ratios'][position])}"
                for point in summary["history"]
                if point["ratios"][position] is not None
            ]
            if len(points) == 1:  # one bucket so far: one point draws nothing, the same twice a dot (its round cap)
                points *= 2
            colour = DELAY_COLOURS[position % len(DELAY_COLOURS)]
            lines.append(
                {"label": f"{entry['nines']} within {entry['delay']:g} s", "points": " ".join(points), "colour": colour}
            )
        charts.append({"name": name, "lines": lines, "window": window})
    return charts


@admin.register(Container)
class ContainerAdmin(admin.ModelAdmin):
    form = ContainerForm
    list_display = ("name", "model_label", "key_columns", "kind", "policy", "enabled")
    sortable_by = ("name", "model_label", "key_columns", "policy", "enabled")  # the others are computed
    readonly_fields = ("kind",)
    list_filter = ("enabled", "exposed", "policy", "cache_alias", ("content_type", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name", "key_columns", "value_columns")
    actions = ["warm_containers", "flush_containers"]
    change_list_template = "admin/cachelayer/container/change_list.html"

    def get_list_display(self, request):
        """Add the live statistics, read once for the whole page."""
        counts = stats.shared(Container.objects.values_list("name", flat=True))
        return [*self.list_display, *(_stat_column(name, title, counts) for name, title in LIST_STAT_COLUMNS)]

    @admin.display(description="model", ordering="content_type")
    def model_label(self, container) -> str:
        """``app_label.Model``: short, where the content type's verbose name ("Demo | country")
        would not wrap (Django keeps foreign key cells on one line); it may wrap after the dot."""
        if not container.content_type_id:
            return "-"
        model = container.content_type.model_class()
        name = model.__name__ if model else container.content_type.model
        return format_html("{}.<wbr>{}", container.content_type.app_label, name)  # may wrap after the dot

    @admin.display(description="kind")
    def kind(self, container) -> str:
        """Say whether a key maps to one row or, key columns not unique, to a list of rows
        (an index): one word in the list, the sentence as its tooltip."""
        model = container.content_type.model_class() if container.content_type_id else None
        if model is None:
            return format_html(
                '<span title="{}">?</span>',
                "decided by the key columns: unique ones make a key container, others an index",
            )
        note = index_note(model, container.key_columns)
        return format_html(
            '<span title="{}">{}</span>', note or "key: one row per key", "key" if note is None else "index"
        )

    def has_warm_permission(self, request) -> bool:
        return request.user.has_perm("cachelayer.warm_container")

    def has_flush_permission(self, request) -> bool:
        return request.user.has_perm("cachelayer.flush_container")

    def get_urls(self):
        view = self.admin_site.admin_view(self.stats_view)
        return [path("stats/", view, name="cachelayer_container_stats"), *super().get_urls()]

    def stats_view(self, request):
        """Show every container's counters (all processes) and a hits/misses chart."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        names = list(Container.objects.values_list("name", flat=True))
        counts = stats.shared(names)
        readable = [n for n in names if "error" not in counts[n]]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Cache statistics",
            "columns": [title for _, title in STATS_PAGE_COLUMNS],
            "rows": [
                (
                    n,
                    counts[n]["error"] if n not in readable else None,
                    [_cell(s, counts[n][s]) for s, _ in STATS_PAGE_COLUMNS],
                )
                for n in names
            ],
            "bars": _chart(readable, counts),
            "freshness": _freshness_charts(readable, counts),
            "freshness_width": FRESHNESS_WIDTH,
            "freshness_height": FRESHNESS_HEIGHT,
            "nines_grid": [
                {"y": _nines_y(1 - 10**-n), "label": f"{100 - 10 ** (2 - n):g}%"} for n in range(1, MOST_NINES)
            ],
            "chart_width": CHART_WIDTH,
            "chart_height": max(len(readable), 1) * CHART_ROW,
            "publish_interval": conf.get("STATS_INTERVAL"),
            "followers": follower_progress.status(),
            "follower_columns": follower_progress.STATUS_COLUMNS,
        }
        return TemplateResponse(request, "admin/cachelayer/container/stats.html", context)

    def _confirm(self, request, queryset, action: str, entries: list[dict]):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{action.capitalize()} containers: are you sure?",
            "action": f"{action}_containers",
            "verb": action,
            "entries": entries,
            "queryset": queryset,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,  # type: ignore[attr-defined]  # django-stubs omit the submodule attribute
        }
        return TemplateResponse(request, "admin/cachelayer/container/action_confirmation.html", context)

    def _definitions(self, request, queryset):
        """Yield ``(container, definition)``; report containers that cannot be used."""
        registry.load()
        for container in queryset:
            try:
                yield container, registry.get(container.name)
            except CachelayerError as exc:
                self.message_user(request, str(exc), messages.ERROR)

    @admin.action(permissions=["warm"], description="Warm selected containers")
    def warm_containers(self, request, queryset):
        if request.POST.get("post") != "yes":
            entries = [_warm_entry(definition) for _, definition in self._definitions(request, queryset)]
            return self._confirm(request, queryset, "warm", entries)
        for _, definition in self._definitions(request, queryset):
            try:
                refusal = warming.refusal(definition)
                if refusal:
                    self.message_user(request, refusal, messages.WARNING)
                    continue
                result = warming.warm(definition)
            except CachelayerError as exc:
                self.message_user(request, f"Container {definition.name}: {exc}", messages.ERROR)
                continue
            self.message_user(
                request,
                f"Container {result.container}: {result.warmed} rows warmed, {result.cached} already cached, "
                f"{result.too_large} skipped (too large) in {result.seconds:.2f} s",
                messages.SUCCESS,
            )

    @admin.action(permissions=["flush"], description="Flush selected containers")
    def flush_containers(self, request, queryset):
        if request.POST.get("post") != "yes":
            entries = [
                _flush_entry(c, definition, request.user) for c, definition in self._definitions(request, queryset)
            ]
            return self._confirm(request, queryset, "flush", entries)
        truncate = set(request.POST.getlist("truncate"))
        for container, definition in self._definitions(request, queryset):
            try:
                if str(container.pk) in truncate:
                    flushing.check_truncate_permission(definition, request.user)
                deleted = flushing.flush(definition, truncate=str(container.pk) in truncate)
            except CachelayerError as exc:
                self.message_user(request, f"Container {definition.name}: {exc}", messages.ERROR)
                continue
            what = (
                f"{deleted} rows deleted from {definition.model._meta.db_table}; "
                if str(container.pk) in truncate
                else ""
            )
            self.message_user(
                request, f"Container {definition.name}: {what}every cached key outdated", messages.SUCCESS
            )


def _warm_entry(definition) -> dict:
    try:
        refusal = warming.refusal(definition)
    except OperationDisabled as exc:
        refusal = str(exc)
    rows = f"load {warming.row_count(definition)} rows of {definition.model._meta.label}"
    return {
        "name": definition.name,
        "effect": refusal or f"{rows} into cache {definition.cache_alias!r} (rows already cached are skipped)",
    }


def _flush_entry(container, definition, user) -> dict:
    """Offer the Truncate box only under a policy that allows it, to a user who may delete the rows."""
    try:
        truncates = flushing.may_truncate(definition)
    except OperationDisabled as exc:
        return {"name": definition.name, "effect": f"refused: {exc}"}
    entry = {
        "name": definition.name,
        "pk": container.pk,
        "effect": "bump the generation: every cached key becomes a miss; rows untouched",
    }
    if truncates and not user.has_perm(flushing.truncate_permission(definition)):
        entry["effect"] += f" (truncating the table would need {flushing.truncate_permission(definition)})"
    elif truncates:
        entry["truncate"] = (
            f"also DELETE all {warming.row_count(definition)} rows of table {definition.model._meta.db_table} "
            f"(flush_policy {definition.policies['flush_policy']}); this cannot be undone"
        )
    return entry


@admin.register(CachePolicy)
class CachePolicyAdmin(admin.ModelAdmin):
    list_display = ("policy_name", "get_policy", "set_policy", "delete_policy", "flush_policy", "refill_after_write")
    list_filter = ("get_policy", "set_policy", "delete_policy", "flush_policy", "refill_after_write")
    search_fields = ("policy_name",)


@admin.register(ConfigOption)
class ConfigOptionAdmin(admin.ModelAdmin):
    list_display = ("name", "value")
