from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("deployapp", "0001_initial")]
    operations = [
        migrations.AlterField("product", "price", models.DecimalField(decimal_places=2, max_digits=7)),
        migrations.AddField("product", "shelf", models.IntegerField(db_default=1)),
    ]
