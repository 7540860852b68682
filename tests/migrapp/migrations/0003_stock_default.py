from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("migrapp", "0002_amount_cents")]
    operations = [migrations.AlterField("price", "stock", models.IntegerField(default=0))]
