from django.apps import AppConfig


class CachedItemsConfig(AppConfig):
    name = "bench.cacheditems"
    label = "cacheditems"
