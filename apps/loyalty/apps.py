from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "apps.loyalty"
    label = "loyalty"
    verbose_name = "Loyalty: badges, perks, tiers"

    def ready(self):
        # The spine imports events.py and handlers.py itself (creatorcommerce/spine/apps.py).
        # Perks at checkout: the offer provider and counter source (pricing.py), and the
        # tiers' handlers (tiers.py) register when imported (docs/pricing.md).
        from . import pricing, tiers  # noqa: F401
