"""The reconciliation API, staff only, on the cloud (docs/edge.md, "Reconciliation"):
``GET /api/v1/nodes/`` (each registered edge's sync and lag) and
``GET /api/v1/nodes/<node id>/reconciliation/`` (edge against cloud totals, gaps, pending
offline captures)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from creatorcommerce.admin import is_staff
from creatorcommerce.api import error_responses
from creatorcommerce.errors import DomainError

from .models import Node
from .reconciliation import node_reconciliation, nodes_list


class IsStaff(BasePermission):
    message = "Only staff can do this."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and is_staff(user))


class NodeNotFound(DomainError):
    status = 404
    code = "node_not_found"
    message = "No registered node has this id."


class NotCloud(DomainError):
    status = 404
    code = "not_cloud"
    message = "Only a cloud node (NODE_ROLE=cloud) keeps the nodes' reconciliation."


def _cloud_only() -> None:
    if settings.NODE_ROLE != "cloud":
        raise NotCloud()


class NodeOutSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="the node's NODE_ID")
    role = serializers.ChoiceField(choices=["edge"], help_text="every registered node is an edge")
    active = serializers.BooleanField(help_text="false: its batches are refused (deactivated)")
    last_sync_at = serializers.DateTimeField(allow_null=True, help_text="the cloud's time of its last batch")
    acked_seq = serializers.IntegerField(help_text="every event 1..acked_seq is held")
    max_seq = serializers.IntegerField(help_text="the highest sequence held")
    lag_events = serializers.IntegerField(help_text="the edge's reported newest sequence minus acked_seq")
    lag_seconds = serializers.FloatField(
        help_text="edge time of its newest reported event minus that of the acked_seq event (docs/edge.md)"
    )


class TotalsSerializer(serializers.Serializer):
    orders = serializers.IntegerField(help_text="paid orders (not refunded, declined...), all currencies")
    units = serializers.IntegerField()
    amount = serializers.DictField(child=serializers.CharField(), help_text='{currency: "decimal"}')


class DaySerializer(serializers.Serializer):
    date = serializers.DateField(help_text="UTC date of the orders' created_at")
    edge = TotalsSerializer(allow_null=True, help_text="null: the edge never reported this day")
    cloud = TotalsSerializer()
    match = serializers.BooleanField(help_text="orders, units and money agree per currency")


class PendingItemSerializer(serializers.Serializer):
    edge_order = serializers.IntegerField(help_text="the order's id on the edge")
    total = serializers.CharField()
    currency = serializers.CharField()
    accepted_at = serializers.DateTimeField(help_text="when the edge recorded order.accepted_offline")


class PendingSerializer(serializers.Serializer):
    orders = serializers.IntegerField()
    amount = serializers.DictField(child=serializers.CharField(), help_text='{currency: "decimal"}')
    items = PendingItemSerializer(many=True, help_text="the first 100, by edge order id")


class UnresolvedItemSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    type = serializers.CharField()
    detail = serializers.CharField(help_text="why the cloud could not apply it")


class UnresolvedSerializer(serializers.Serializer):
    events = serializers.IntegerField()
    items = UnresolvedItemSerializer(many=True, help_text="the newest 20")


class ReconciliationSerializer(serializers.Serializer):
    node = serializers.CharField()
    active = serializers.BooleanField()
    last_sync_at = serializers.DateTimeField(allow_null=True)
    acked_seq = serializers.IntegerField()
    max_seq = serializers.IntegerField()
    head_seq = serializers.IntegerField(help_text="the newest sequence the edge says it has")
    lag_events = serializers.IntegerField()
    lag_seconds = serializers.FloatField()
    edge = TotalsSerializer(help_text="the edge's running totals as of its batch ending at totals_seq")
    cloud = TotalsSerializer(help_text="the cloud's sums over the node's mirrored paid orders")
    match = serializers.BooleanField()
    totals_seq = serializers.IntegerField()
    gaps = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField(), min_length=2, max_length=2),
        help_text="missing sequence ranges [from_seq, to_seq], inclusive",
    )
    pending_captures = PendingSerializer(help_text="orders accepted offline, not captured yet, as the cloud knows")
    unresolved = UnresolvedSerializer(help_text="events held but not applied (names the cloud does not know)")
    days = DaySerializer(many=True, help_text="newest first, at most 400")


class NodesView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        responses={200: NodeOutSerializer(many=True), **error_responses(**{"404": "not_cloud"})},
        operation_id="nodes_list",
        description='Staff: every registered edge node with its sync lag (docs/edge.md, "Reconciliation").',
    )
    def get(self, request):
        _cloud_only()
        return Response(NodeOutSerializer(nodes_list(), many=True).data)


class NodeReconciliationView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        responses={200: ReconciliationSerializer, **error_responses(**{"404": "node_not_found, not_cloud"})},
        operation_id="nodes_reconciliation",
        description=(
            "Staff: an edge's totals against the cloud's, in all and per day, its missing sequence ranges and "
            'its pending offline captures (docs/edge.md, "Reconciliation").'
        ),
    )
    def get(self, request, node_id: str):
        _cloud_only()
        node = Node.objects.filter(node_id=node_id).first()
        if node is None:
            raise NodeNotFound()
        return Response(ReconciliationSerializer(node_reconciliation(node)).data)
