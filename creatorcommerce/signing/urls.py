from django.urls import path

from . import views

urlpatterns = [
    path(".well-known/jwks.json", views.jwks, name="jwks"),
]
