"""HTML pages of the calendars app (included at the site root)."""

from django.urls import path

from . import views

urlpatterns = [
    path("calendars/stop/<str:token>/", views.stop, name="calendars-stop"),
]
