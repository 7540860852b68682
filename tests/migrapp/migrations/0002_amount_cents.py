from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("migrapp", "0001_initial")]
    operations = [migrations.AlterField("price", "amount", models.DecimalField(decimal_places=2, max_digits=6))]
