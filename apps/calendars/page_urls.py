"""HTML pages of the calendars app (included at the site root)."""

from django.urls import path

from . import views

urlpatterns = [
    path("me/calendar/", views.my_calendar, name="my-calendar"),
    path("calendars/stop/<str:token>/", views.stop, name="calendars-stop"),
    path("calendars/shops/<slug:slug>.ics", views.shop_feed, name="calendars-shop-feed"),
    path("calendars/<str:token>.ics", views.viewer_feed, name="calendars-feed"),
]
