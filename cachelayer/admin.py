"""Admin pages for containers, cache policies and config options.

Saves go through the models' clean(), which shares its validators with the
system checks, so a bad mapping is a form error, never a 500. Containers
have live statistics (in the list and on a stats page with a chart) and the
actions "warm" and "flush", each behind its own permission and a
confirmation page.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path

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
    ("invalidations", "invalidations"),
    ("lease_waits", "lease waits"),
    ("errors", "errors"),
    ("rejected", "rejected payloads"),
    (stats.LAST_FLUSH, "last flush"),
)
STATS_PAGE_COLUMNS = (*STAT_COLUMNS, (stats.LAST_INSPECTION, "last inspection"))  # cache_inspect's last run
CHART_WIDTH = 480  # px of the longest bar on the stats page
CHART_ROW = 28  # px per container in the chart


def _stat_column(name: str, title: str, counts: dict):
    def column(container):
        values = counts.get(container.name, {})
        return "error" if "error" in values else stats.display(name, values.get(name))

    column.short_description = title  # type: ignore[attr-defined]  # the admin's column-title attribute on a function
    column.__name__ = f"stat_{name}"  # the cells' CSS class: field-stat_hits, ...
    return column


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


@admin.register(Container)
class ContainerAdmin(admin.ModelAdmin):
    form = ContainerForm
    list_display = ("name", "content_type", "key_columns", "kind", "policy", "enabled")
    sortable_by = ("name", "content_type", "key_columns", "policy", "enabled")  # the others are computed
    readonly_fields = ("kind",)
    list_filter = ("enabled", "exposed", "policy", "cache_alias", ("content_type", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name", "key_columns", "value_columns")
    actions = ["warm_containers", "flush_containers"]
    change_list_template = "admin/cachelayer/container/change_list.html"

    def get_list_display(self, request):
        """Add the live statistics, read once for the whole page."""
        counts = stats.shared(Container.objects.values_list("name", flat=True))
        return [*self.list_display, *(_stat_column(name, title, counts) for name, title in STAT_COLUMNS)]

    @admin.display(description="kind")
    def kind(self, container) -> str:
        """Say whether a key maps to one row or, key columns not unique, to a list of rows (an index)."""
        model = container.content_type.model_class() if container.content_type_id else None
        if model is None:
            return "decided by the key columns: unique ones make a key container, others an index"
        note = index_note(model, container.key_columns)
        return "key: one row per key" if note is None else note

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
                    [stats.display(s, counts[n][s]) for s, _ in STATS_PAGE_COLUMNS],
                )
                for n in names
            ],
            "bars": _chart(readable, counts),
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
    list_display = ("policy_name", "get_policy", "set_policy", "delete_policy", "flush_policy")
    list_filter = ("get_policy", "set_policy", "delete_policy", "flush_policy")
    search_fields = ("policy_name",)


@admin.register(ConfigOption)
class ConfigOptionAdmin(admin.ModelAdmin):
    list_display = ("name", "value")
