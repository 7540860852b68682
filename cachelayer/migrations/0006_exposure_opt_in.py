"""Containers are no longer exposed to cache_serve by default.

Rows created from now on start unexposed. Existing rows keep their value,
except the containers migrate created for CachedModelMixin models and that
nobody edited since (``declared``): they were exposed by the old default,
never by a choice, so they are unexposed too. Expose them again in the admin
(or ``Container.objects.filter(...).update(exposed=True)``) where wanted.
"""

from django.db import migrations, models


def unexpose_declared(apps, schema_editor):
    Container = apps.get_model("cachelayer", "Container")
    Container.objects.using(schema_editor.connection.alias).filter(declared=True).update(exposed=False)


class Migration(migrations.Migration):
    dependencies = [
        ("cachelayer", "0005_follower_health"),
    ]

    operations = [
        migrations.AlterField(
            model_name="container",
            name="exposed",
            field=models.BooleanField(
                default=False,
                help_text="Reachable through cache_serve (off by default: nothing is served unless someone says so).",
            ),
        ),
        migrations.RunPython(unexpose_declared, migrations.RunPython.noop),
    ]
