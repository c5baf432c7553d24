from django.urls import path

from . import api

urlpatterns = [
    path("me/preferences/", api.PreferencesView.as_view(), name="api-preferences"),
    path("me/follows/", api.MyFollowsView.as_view(), name="api-my-follows"),
    path("me/reminders/", api.MyRemindersView.as_view(), name="api-my-reminders"),
    path("me/notifications/", api.NotificationsView.as_view(), name="api-my-notifications"),
    path("me/notifications/<int:pk>/read/", api.NotificationReadView.as_view(), name="api-notification-read"),
    path("me/calendar-feed/", api.CalendarFeedView.as_view(), name="api-calendar-feed"),
    path(
        "shops/<str:slug>/audience-availability/",
        api.AudienceAvailabilityView.as_view(),
        name="api-audience-availability",
    ),
    path("shops/<str:slug>/follow/", api.FollowView.as_view(), name="api-shop-follow"),
    path("streams/<int:pk>/reminder/", api.ReminderView.as_view(), name="api-stream-reminder"),
]
