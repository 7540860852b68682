from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("cachelayer", "0008_topology"),
    ]

    operations = [
        migrations.AddField(
            model_name="cachepolicy",
            name="refill_after_write",
            field=models.BooleanField(
                default=False,
                help_text="After a committed write, store the new row, read back from the database, under its new "
                "version, so the next read of a hot row hits (the writer pays one query and two cache round trips; "
                "get_policy must be caching).",
            ),
        ),
    ]
