from django.apps import AppConfig


class MigrappConfig(AppConfig):
    name = "tests.migrapp"
    label = "migrapp"
    default_auto_field = "django.db.models.BigAutoField"
