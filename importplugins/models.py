"""The operator's import settings: the plugin chain and the web-download filter lists."""

from __future__ import annotations

from django.db import models


class ImportSettings(models.Model):
    """The operator's import settings, edited in the console; one row (pk 1) or none.

    Without a row the environment settings apply
    (:func:`importplugins.import_settings.current`). Lists are stored comma-separated; the plugin
    chain is the ordered :class:`ImportPluginStep` rows.
    An accepted import keeps a snapshot in its task's input, so an edit never changes it.
    """

    SINGLETON_ID = 1

    inject_metadata_properties = models.TextField(
        blank=True, help_text="key:value pairs, comma-separated (INJECT_METADATA_PROPERTIES)."
    )
    ignore_user_roles = models.TextField(
        blank=True, help_text="Comma-separated roles whose imports get nothing injected."
    )
    image_conversion_output_format = models.CharField(max_length=16, default="raw")
    allowed_schemes = models.TextField(blank=True)
    disallowed_schemes = models.TextField(blank=True)
    allowed_hosts = models.TextField(blank=True)
    disallowed_hosts = models.TextField(blank=True)
    allowed_ports = models.TextField(blank=True)
    disallowed_ports = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # The table predates the move of import settings beside the plugin chain.
        db_table = "tasks_importsettings"
        verbose_name = "import settings"
        verbose_name_plural = "import settings"

    def __str__(self) -> str:
        return "Import settings"

    def save(self, *args, **kwargs) -> None:
        self.pk = self.SINGLETON_ID
        super().save(*args, **kwargs)


class ImportPluginStep(models.Model):
    """One plugin of the chain; the chain runs in ``position`` order (a name may repeat)."""

    import_settings = models.ForeignKey(
        ImportSettings, on_delete=models.CASCADE, related_name="plugin_steps"
    )
    position = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=100)

    class Meta:
        db_table = "tasks_importpluginstep"
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.position}: {self.name}"
