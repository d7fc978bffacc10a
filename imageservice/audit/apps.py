from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "imageservice.audit"
    label = "audit"
    verbose_name = "Audit trail"
