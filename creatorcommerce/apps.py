from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    """Replaces the default admin site with one creators can log into (see admin.py)."""

    default_site = "creatorcommerce.admin.AdminSite"


class CoreConfig(AppConfig):
    """The project package as an app: its management commands (demo, seed_demo)."""

    name = "creatorcommerce"
    label = "core"
    verbose_name = "CreatorCommerce"

    def ready(self):
        from . import schema  # noqa: F401  (registers OpenAPI extensions)
        from .metrics import forget_dead_processes

        # Several processes share PROMETHEUS_MULTIPROC_DIR: a killed one's requests stop
        # counting as in flight when the next process starts (docs/operations.md, "Metrics").
        forget_dead_processes()
