from django.urls import path

from . import views

urlpatterns = [
    path("sync/v1/batches", views.batches, name="sync-batches"),
    path("sync/v1/catalog", views.catalog, name="sync-catalog"),
]
