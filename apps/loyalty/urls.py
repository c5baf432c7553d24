from django.urls import path

from . import api, api_perks

urlpatterns = [
    path("me/badges/", api.MyBadgesView.as_view(), name="api-my-badges"),
    # perks and tiers (apps/loyalty/api_perks.py)
    path("me/perks/", api_perks.MyPerksView.as_view(), name="api-my-perks"),
    path("me/loyalty/", api_perks.MyLoyaltyView.as_view(), name="api-my-loyalty"),
]
