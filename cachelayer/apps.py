from django.apps import AppConfig
from django.core.signals import setting_changed
from django.db.models import signals


class CachelayerConfig(AppConfig):
    name = "cachelayer"
    verbose_name = "Cache layer"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        """Wire the receivers and checks once (the one place allowed to import upward)."""
        from cachelayer import checks, receivers  # noqa: F401 (checks register)
        from cachelayer.models import CachePolicy, ConfigOption, Container
        from cachelayer.tasks import autocontainers
        from cachelayer.tasks.follow import checks as follower_checks  # noqa: F401 (registers W020)

        signals.pre_save.connect(receivers.before_save, dispatch_uid="cachelayer.before_save")
        signals.post_save.connect(receivers.after_save, dispatch_uid="cachelayer.save")
        signals.pre_delete.connect(receivers.before_delete, dispatch_uid="cachelayer.delete")
        signals.m2m_changed.connect(receivers.m2m_changed, dispatch_uid="cachelayer.m2m")
        for model in (Container, CachePolicy, ConfigOption):
            for signal in (signals.post_save, signals.post_delete):
                signal.connect(
                    receivers.configuration_changed,
                    sender=model,
                    dispatch_uid=f"cachelayer.config.{model.__name__}.{signal is signals.post_save}",
                )
        signals.post_migrate.connect(autocontainers.post_migrate_receiver, sender=self, dispatch_uid="cachelayer.auto")
        setting_changed.connect(receivers.settings_changed, dispatch_uid="cachelayer.settings")
