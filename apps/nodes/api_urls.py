"""``/api/v1/nodes/...``: the reconciliation API (docs/edge.md, "Reconciliation")."""

from django.urls import path

from . import api

urlpatterns = [
    path("nodes/", api.NodesView.as_view(), name="api-nodes"),
    path("nodes/<str:node_id>/reconciliation/", api.NodeReconciliationView.as_view(), name="api-node-reconciliation"),
]
