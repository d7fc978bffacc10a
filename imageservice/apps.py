from django.apps import AppConfig
from django.core import checks


class ImageServiceConfig(AppConfig):
    name = "imageservice"
    verbose_name = "Image service"

    def ready(self) -> None:
        # The checks use models and settings-driven modules, importable only once apps are ready.
        from imageservice import checks as service_checks  # noqa: PLC0415
        from imageservice.policy.checks import check_policy  # noqa: PLC0415
        from importplugins.checks import check_conversion_tool, check_import_plugins  # noqa: PLC0415

        checks.register(service_checks.check_settings)
        checks.register(check_policy)
        checks.register(check_import_plugins)
        checks.register(check_conversion_tool, checks.Tags.database)
