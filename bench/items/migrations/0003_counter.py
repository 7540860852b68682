from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("items", "0002_comment"),
    ]

    operations = [
        migrations.CreateModel(
            name="Counter",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100)),
                ("score", models.IntegerField()),
            ],
        ),
    ]
