"""Admin pages for containers, cache policies and config options.

Saves go through the models' clean(), which shares its validators with the
system checks, so a bad mapping is a form error, never a 500.
"""

from django.contrib import admin

from cachelayer.models import CachePolicy, ConfigOption, Container


@admin.register(Container)
class ContainerAdmin(admin.ModelAdmin):
    list_display = ("name", "content_type", "key_columns", "value_columns", "policy", "cache_alias", "enabled", "exposed")
    list_filter = ("enabled", "exposed", "policy")
    search_fields = ("name", "key_columns", "value_columns")


@admin.register(CachePolicy)
class CachePolicyAdmin(admin.ModelAdmin):
    list_display = ("policy_name", "get_policy", "set_policy", "delete_policy", "flush_policy")


@admin.register(ConfigOption)
class ConfigOptionAdmin(admin.ModelAdmin):
    list_display = ("name", "value")
