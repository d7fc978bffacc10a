from django.db import migrations


class Migration(migrations.Migration):
    """ImportSettings and ImportPluginStep now belong to the importplugins app; the tables stay."""

    dependencies = [
        ("tasks", "0002_importsettings_importpluginstep"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ImportPluginStep"),
                migrations.DeleteModel(name="ImportSettings"),
            ],
        ),
    ]
