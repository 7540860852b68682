from django.apps import AppConfig


class DeployappConfig(AppConfig):
    name = "tests.deployapp_v1"
    label = "deployapp"
    default_auto_field = "django.db.models.BigAutoField"
