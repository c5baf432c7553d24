from django.urls import path

from . import api

urlpatterns = [
    path("products/", api.ProductsView.as_view(), name="api-products"),
    path("products/<int:pk>/", api.ProductDetailView.as_view(), name="api-product"),
    path("skus/<str:code>/", api.SkuDetailView.as_view(), name="api-sku"),
    path("skus/<str:code>/stock/", api.SkuStockView.as_view(), name="api-sku-stock"),
    path("venues/<int:pk>/stock/", api.VenueStockView.as_view(), name="api-venue-stock"),
]
