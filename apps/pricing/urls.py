from django.urls import path

from .api import QuotesView

urlpatterns = [path("quotes/", QuotesView.as_view(), name="api-quotes")]
