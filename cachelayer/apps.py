from django.apps import AppConfig


class CachelayerConfig(AppConfig):
    name = "cachelayer"
    verbose_name = "Cache layer"
    default_auto_field = "django.db.models.BigAutoField"
