from django.urls import path

from . import api, api_moderation, api_perks

urlpatterns = [
    path("me/badges/", api.MyBadgesView.as_view(), name="api-my-badges"),
    # perks and tiers (apps/loyalty/api_perks.py)
    path("me/perks/", api_perks.MyPerksView.as_view(), name="api-my-perks"),
    path("me/loyalty/", api_perks.MyLoyaltyView.as_view(), name="api-my-loyalty"),
    # -- staff moderation (helper L3) --
    path("moderation/awards/", api_moderation.ModerationAwardsView.as_view(), name="api-moderation-awards"),
    path(
        "moderation/awards/<int:pk>/approve/",
        api_moderation.ApproveView.as_view(),
        name="api-moderation-award-approve",
    ),
    path(
        "moderation/awards/<int:pk>/revoke/",
        api_moderation.RevokeView.as_view(),
        name="api-moderation-award-revoke",
    ),
]
