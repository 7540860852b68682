from django.apps import AppConfig
from django.db.models import signals


class CachelayerConfig(AppConfig):
    name = "cachelayer"
    verbose_name = "Cache layer"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from cachelayer import autocontainers, checks, receivers  # noqa: F401 (checks register)
        from cachelayer.follower import checks as follower_checks  # noqa: F401 (registers W020)
        from cachelayer.models import CachePolicy, ConfigOption, Container

        signals.pre_save.connect(receivers.remember_old_keys, dispatch_uid="cachelayer.old_keys")
        signals.post_save.connect(receivers.invalidate_instance, dispatch_uid="cachelayer.save")
        signals.post_delete.connect(receivers.invalidate_instance, dispatch_uid="cachelayer.delete")
        for model in (Container, CachePolicy, ConfigOption):
            for signal in (signals.post_save, signals.post_delete):
                signal.connect(
                    receivers.configuration_changed, sender=model, dispatch_uid=f"cachelayer.config.{model.__name__}.{signal is signals.post_save}"
                )
        signals.post_migrate.connect(autocontainers.post_migrate_receiver, sender=self, dispatch_uid="cachelayer.auto")
