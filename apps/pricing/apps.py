from django.apps import AppConfig


class PricingConfig(AppConfig):
    name = "apps.pricing"
    label = "pricing"
    verbose_name = "Pricing and offers"

    def ready(self):
        from . import bundles, claims  # noqa: F401  (the bundle provider; the stock units source)
