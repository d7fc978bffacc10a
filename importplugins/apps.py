from django.apps import AppConfig


class ImportPluginsConfig(AppConfig):
    name = "importplugins"
    verbose_name = "Import plugins"
