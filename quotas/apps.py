from django.apps import AppConfig
from django.core import checks


class QuotasConfig(AppConfig):
    name = "quotas"
    verbose_name = "Quotas"

    def ready(self) -> None:
        from quotas.checks import check_default_limits, check_keystone_limits  # noqa: PLC0415

        checks.register(check_default_limits)
        checks.register(check_keystone_limits)
