import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Takes over the import settings tables created by the tasks app (state only)."""

    initial = True

    dependencies = [
        ("tasks", "0003_move_import_settings"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ImportSettings",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "inject_metadata_properties",
                            models.TextField(
                                blank=True,
                                help_text="key:value pairs, comma-separated (INJECT_METADATA_PROPERTIES).",
                            ),
                        ),
                        (
                            "ignore_user_roles",
                            models.TextField(
                                blank=True,
                                help_text="Comma-separated roles whose imports get nothing injected.",
                            ),
                        ),
                        ("image_conversion_output_format", models.CharField(default="raw", max_length=16)),
                        ("allowed_schemes", models.TextField(blank=True)),
                        ("disallowed_schemes", models.TextField(blank=True)),
                        ("allowed_hosts", models.TextField(blank=True)),
                        ("disallowed_hosts", models.TextField(blank=True)),
                        ("allowed_ports", models.TextField(blank=True)),
                        ("disallowed_ports", models.TextField(blank=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        "db_table": "tasks_importsettings",
                        "verbose_name": "import settings",
                        "verbose_name_plural": "import settings",
                    },
                ),
                migrations.CreateModel(
                    name="ImportPluginStep",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("position", models.PositiveIntegerField(default=0)),
                        ("name", models.CharField(max_length=100)),
                        (
                            "import_settings",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="plugin_steps",
                                to="importplugins.importsettings",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "tasks_importpluginstep",
                        "ordering": ["position", "id"],
                    },
                ),
            ],
        ),
    ]
