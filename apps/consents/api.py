"""``/api/v1/me/consents/``: a viewer's consents, explicit and reversible (docs/geofences.md)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from creatorcommerce.api import error_responses, validated
from creatorcommerce.fields import iso_utc

from .exceptions import ConsentKindNotFound
from .models import Consent
from .selectors import consents_of
from .services import consent_set


class StrictBooleanField(serializers.BooleanField):
    """JSON ``true``/``false`` only (DRF's BooleanField takes "yes", 1, "on"...)."""

    default_error_messages = {"type": "Expected true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("type")
        return data


class ConsentSetSerializer(serializers.Serializer):
    granted = StrictBooleanField()


class ConsentSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Consent.Kind.values)
    granted = serializers.BooleanField()
    changed_at = serializers.DateTimeField(allow_null=True, help_text="null: never set")


class ConsentSetResultSerializer(serializers.Serializer):
    granted = serializers.BooleanField()
    changed_at = serializers.DateTimeField()
    deleted = serializers.IntegerField(
        required=False, help_text="on revoke only: rows erased (positions, presences; the calendar feed)"
    )
    feed_url = serializers.CharField(
        required=False, help_text="calendar, on grant only: the viewer's private ICS feed (docs/calendars.md)"
    )


def _when(value):
    return iso_utc(value) if value else None


class ConsentsView(APIView):
    @extend_schema(
        responses={200: ConsentSerializer(many=True), **error_responses(**{"401": "not_authenticated"})},
        operation_id="me_consents_list",
    )
    def get(self, request):
        return Response([{**row, "changed_at": _when(row["changed_at"])} for row in consents_of(user=request.user)])


class ConsentDetailView(APIView):
    @extend_schema(
        request=ConsentSetSerializer,
        responses={
            200: ConsentSetResultSerializer,
            **error_responses(
                **{
                    "400": "invalid, malformed_request",
                    "401": "not_authenticated",
                    "404": "consent_kind_not_found",
                    "429": "rate_limited",
                }
            ),
        },
        operation_id="me_consents_set",
    )
    def put(self, request, kind: str):
        if kind not in Consent.Kind.values:
            raise ConsentKindNotFound()
        data = validated(ConsentSetSerializer, request.data)
        outcome = consent_set(user=request.user, kind=kind, granted=data["granted"])
        body = {"granted": outcome.consent.granted, "changed_at": iso_utc(outcome.consent.changed_at)}
        if data["granted"]:
            body |= outcome.extra
        else:
            body["deleted"] = outcome.deleted
        return Response(body)
