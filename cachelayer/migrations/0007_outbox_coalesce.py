"""One outbox row per (cache, server, counter key): rows of the old shape
(one per undelivered write, any number of keys) are split into rows of the
new one, with duplicates merged."""

import random

from django.db import migrations, models


def split_rows(apps, schema_editor):
    Entry = apps.get_model("cachelayer", "OutboxEntry")
    using = schema_editor.connection.alias
    rows = {}
    for entry in Entry.objects.using(using).order_by("id"):
        common = {"cache_alias": entry.cache_alias, "container": entry.container}
        for route, counters, payloads in entry.groups:
            key = (counters or payloads)[0]
            rows[entry.cache_alias, "", key] = Entry(
                **common,
                server="",
                key=key,
                route=route,
                counters=counters,
                payloads=payloads,
                revision=random.getrandbits(62),
            )
        for key in entry.shared:
            for server in entry.servers or [""]:
                rows[entry.cache_alias, server, key] = Entry(
                    **common,
                    server=server,
                    key=key,
                    counters=[key],
                    revision=random.getrandbits(62),
                )
    Entry.objects.using(using).all().delete()
    Entry.objects.using(using).bulk_create(rows.values())


class Migration(migrations.Migration):
    dependencies = [
        ("cachelayer", "0006_exposure_opt_in"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxentry",
            name="server",
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.AddField(
            model_name="outboxentry",
            name="key",
            field=models.CharField(default="", max_length=250),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="outboxentry",
            name="route",
            field=models.JSONField(null=True),
        ),
        migrations.AddField(
            model_name="outboxentry",
            name="counters",
            field=models.JSONField(default=list),
        ),
        migrations.AddField(
            model_name="outboxentry",
            name="payloads",
            field=models.JSONField(default=list),
        ),
        migrations.AddField(
            model_name="outboxentry",
            name="revision",
            field=models.BigIntegerField(default=0),
        ),
        migrations.RunPython(split_rows, migrations.RunPython.noop, elidable=True),
        migrations.RemoveField(model_name="outboxentry", name="groups"),
        migrations.RemoveField(model_name="outboxentry", name="shared"),
        migrations.RemoveField(model_name="outboxentry", name="servers"),
        migrations.AddConstraint(
            model_name="outboxentry",
            constraint=models.UniqueConstraint(
                fields=("cache_alias", "server", "key"), name="cachelayer_outbox_one_per_key"
            ),
        ),
    ]
