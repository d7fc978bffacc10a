from django.apps import AppConfig
from django.core import checks


class ImageServiceConfig(AppConfig):
    name = "imageservice"
    verbose_name = "Image service"

    def ready(self) -> None:
        from imageservice import checks as service_checks
        from imageservice.policy.checks import check_policy
        from importplugins.checks import check_conversion_tool, check_import_plugins

        checks.register(service_checks.check_settings)
        checks.register(check_policy)
        checks.register(check_import_plugins)
        checks.register(check_conversion_tool, checks.Tags.database)
