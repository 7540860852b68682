"""The app that fits cachelayer into Django's test run, and maps every model (mapping.py)."""

from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_migrate


class SuiteConfig(AppConfig):
    """cachelayer installed, nothing mapped."""

    name = "tests.djangosuite"
    label = "cachelayer_djangosuite"

    def ready(self):
        # runtests.py builds contenttypes and auth without migrations, so cachelayer's
        # migrations (which depend on theirs) cannot run: its tables are made the same way.
        settings.MIGRATION_MODULES = {**settings.MIGRATION_MODULES, "cachelayer": None}
        # Django's test models use plain managers on purpose: the warning holds for each.
        settings.SILENCED_SYSTEM_CHECKS = [*settings.SILENCED_SYSTEM_CHECKS, "cachelayer.W011"]


class MapEveryModelConfig(SuiteConfig):
    """cachelayer installed, a container over every key of every model."""

    def ready(self):
        from tests.djangosuite.mapping import map_every_model

        super().ready()
        post_migrate.connect(map_every_model, dispatch_uid="cachelayer_djangosuite")
