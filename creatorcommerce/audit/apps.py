from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "creatorcommerce.audit"
    label = "audit"
    verbose_name = "Audit log"
