"""HTML pages of the storefront (included at the site root)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("streams/<int:pk>/", views.stream_page, name="stream"),
    path("streams/<int:pk>/control/", views.control_room, name="stream-control"),
]
