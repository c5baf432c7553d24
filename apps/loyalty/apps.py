from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "apps.loyalty"
    label = "loyalty"
    verbose_name = "Loyalty: badges, perks, tiers"

    def ready(self):
        # The spine imports events.py and handlers.py itself (creatorcommerce/spine/apps.py).
        # The perks' offer provider registers itself when perks.py is imported (docs/pricing.md).
        from . import perks  # noqa: F401
