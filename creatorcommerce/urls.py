from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.catalog.views import PriceWebhookView
from apps.streams.views import MediaAuthView

from . import views
from .metrics import metrics_view

api_v1 = [
    path("", include("apps.accounts.urls")),
    path("", include("apps.catalog.urls")),
    path("", include("apps.orders.urls")),
    path("", include("apps.pricing.urls")),
    path("", include("apps.streams.urls")),
    path("", include("apps.consents.urls")),
    path("", include("apps.geofences.urls")),
    path("", include("apps.loyalty.urls")),
    path("", include("apps.calendars.urls")),
    path("", include("apps.devices.urls")),
    path("", include("apps.nodes.api_urls")),
    path("", include("apps.experiments.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

urlpatterns = [
    path("", include("apps.streams.page_urls")),
    path("", include("apps.orders.page_urls")),
    path("", include("apps.calendars.page_urls")),
    path("healthz", views.healthz, name="healthz"),
    path("livez", views.livez, name="livez"),
    path("metrics", metrics_view, name="metrics"),  # Prometheus; restricted (docs/operations.md)
    path("", include("creatorcommerce.signing.urls")),
    path("", include("apps.nodes.urls")),  # /sync/v1/batches: node-signed, not under /api/v1 auth
    path("hooks/price/", PriceWebhookView.as_view(), name="hook-price"),
    path("hooks/media/auth", MediaAuthView.as_view(), name="hook-media-auth"),
    path("admin/", admin.site.urls),
    path("accounts/", include("apps.accounts.page_urls")),  # the time zone page, next to allauth's
    path("accounts/", include("allauth.urls")),
    path("_allauth/", include("allauth.headless.urls")),
    path("api/v1/", include(api_v1)),
]

handler400 = "creatorcommerce.views.bad_request"
handler403 = "creatorcommerce.views.permission_denied"
handler404 = "creatorcommerce.views.not_found"
handler500 = "creatorcommerce.views.server_error"
