from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "apps.loyalty"
    label = "loyalty"
    verbose_name = "Loyalty: badges, perks, tiers"

    def ready(self):
        from . import pricing, tiers  # noqa: F401  (perks at checkout: offer provider, counter source, handlers)
