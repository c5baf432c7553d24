from django.urls import path

from . import api_moderation

urlpatterns = [
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
