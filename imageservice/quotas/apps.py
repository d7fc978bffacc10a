from django.apps import AppConfig
from django.core import checks


class QuotasConfig(AppConfig):
    name = "imageservice.quotas"
    label = "quotas"
    verbose_name = "Quotas"

    def ready(self) -> None:
        from imageservice.quotas.checks import (  # noqa: PLC0415
            check_default_limits,
            check_keystone_limits,
        )

        checks.register(check_default_limits)
        checks.register(check_keystone_limits)
