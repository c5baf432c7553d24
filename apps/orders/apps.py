from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "apps.orders"
    label = "orders"
    verbose_name = "Orders and checkout"

    def ready(self):
        from . import soldout  # noqa: F401  (registers the buy's answer from memory, before the pool)
