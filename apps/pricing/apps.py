from django.apps import AppConfig


class PricingConfig(AppConfig):
    name = "apps.pricing"
    label = "pricing"
    verbose_name = "Pricing and offers"

    def ready(self):
        from . import claims  # noqa: F401  (registers the stock units source)
