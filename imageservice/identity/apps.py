from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "imageservice.identity"
    label = "identity"
    verbose_name = "Identity"
