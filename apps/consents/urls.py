from django.urls import path

from .api import ConsentDetailView, ConsentsView

urlpatterns = [
    path("me/consents/", ConsentsView.as_view(), name="api-consents"),
    path("me/consents/<str:kind>/", ConsentDetailView.as_view(), name="api-consent"),
]
