from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("cacheditems", "0002_comment"),
        ("items", "0003_counter"),
    ]

    operations = [
        migrations.CreateModel(
            name="CachedCounter",
            fields=[],
            options={
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("items.counter", models.Model),
        ),
    ]
