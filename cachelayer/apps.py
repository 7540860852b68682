from django.apps import AppConfig
from django.core.signals import request_finished, request_started, setting_changed
from django.db.models import signals


class CachelayerConfig(AppConfig):
    name = "cachelayer"
    verbose_name = "Cache layer"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        """Wire the receivers and checks once (the one place allowed to import upward)."""
        from cachelayer import checks, receivers  # noqa: F401 (checks register)
        from cachelayer import signals as own_signals
        from cachelayer.engine import memo
        from cachelayer.models import CachePolicy, ConfigOption, Container
        from cachelayer.tasks import autocontainers
        from cachelayer.tasks.follow import checks as follower_checks  # noqa: F401 (registers W020)

        # The write receivers are connected per mapped model as the registry loads (receivers.Wiring).
        own_signals.definitions_changed.connect(receivers.definitions_changed, dispatch_uid="cachelayer.wiring")
        signals.class_prepared.connect(receivers.wiring.model_prepared, dispatch_uid="cachelayer.historical")
        receivers.wiring.follow(loaded=False)
        request_finished.connect(receivers.request_finished, dispatch_uid="cachelayer.request_finished")
        request_started.connect(memo.request_started, dispatch_uid="cachelayer.memo.started")
        request_finished.connect(memo.request_finished, dispatch_uid="cachelayer.memo.finished")
        own_signals.configuration_saved.connect(receivers.configuration_changed, dispatch_uid="cachelayer.config")
        for model in (Container, CachePolicy, ConfigOption):  # (a cascade deletes with no delete() call)
            signals.post_delete.connect(
                receivers.configuration_changed, sender=model, dispatch_uid=f"cachelayer.config.{model.__name__}"
            )
        signals.post_migrate.connect(autocontainers.post_migrate_receiver, sender=self, dispatch_uid="cachelayer.auto")
        setting_changed.connect(receivers.settings_changed, dispatch_uid="cachelayer.settings")
