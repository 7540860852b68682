from django.apps import AppConfig


class ItemsConfig(AppConfig):
    name = "bench.items"
    label = "items"
    default_auto_field = "django.db.models.AutoField"
