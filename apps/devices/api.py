"""The devices API for creators (docs/devices.md, "API"): their devices, the cue log, and a
cue fired by hand (the control room)."""

from __future__ import annotations

import re

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.streams.models import Stream
from creatorcommerce.api import IsCreator, error_responses, validated
from creatorcommerce.errors import DomainError
from creatorcommerce.fields import StrictCharField

from .models import CueKind, Device
from .selectors import cue_body, cues_of, device_of, devices_of
from .services import cue_fire


class DeviceOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=Device.Kind.choices)
    room = serializers.IntegerField()
    online = serializers.BooleanField()
    last_seen = serializers.DateTimeField(allow_null=True)


class CueOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    device = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=CueKind.choices)
    params = serializers.DictField()
    event = serializers.CharField(help_text='the spine event type it answers, or "manual"')
    stream = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=["queued", "sent", "acked", "failed"])
    detail = serializers.CharField()
    issued_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    acked_at = serializers.DateTimeField(allow_null=True)
    latency_ms = serializers.IntegerField(allow_null=True)


class CueInSerializer(serializers.Serializer):
    kind = StrictCharField(help_text="pulse, flash, urgency, tap or route (docs/devices.md)")
    params = serializers.DictField(required=False, default=dict)
    stream = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, help_text="the shop's stream it is fired for"
    )


class InvalidStreamParam(DomainError):
    code = "invalid_stream"
    message = "stream must be a stream id."


class DevicesView(APIView):
    permission_classes = [IsCreator]

    @extend_schema(responses={200: DeviceOutSerializer(many=True)}, operation_id="devices_list")
    def get(self, request):
        return Response(devices_of(request.user.shop))


class CuesView(APIView):
    permission_classes = [IsCreator]

    @extend_schema(
        parameters=[
            OpenApiParameter("stream", int, description="only this stream's cues"),
            OpenApiParameter(
                "streamless", bool, description="with stream: also the shop's cues of no stream (the control room)"
            ),
        ],
        responses={200: CueOutSerializer(many=True), **error_responses(**{"400": "invalid_stream"})},
        operation_id="devices_cues_list",
    )
    def get(self, request):
        raw = request.query_params.get("stream")
        stream_id = None
        if raw not in (None, ""):
            if not re.fullmatch(r"[0-9]{1,18}", raw):  # ASCII digits only ("²".isdigit() is true)
                raise InvalidStreamParam()
            stream_id = int(raw)
        streamless = request.query_params.get("streamless") in ("1", "true")
        return Response(cues_of(request.user.shop, stream_id=stream_id, streamless=streamless))


class DeviceCuesView(APIView):
    permission_classes = [IsCreator]

    @extend_schema(
        request=CueInSerializer,
        responses={
            201: CueOutSerializer,
            **error_responses(
                **{
                    "400": "invalid, invalid_cue_kind, invalid_cue_params, invalid_stream, device_disabled",
                    "404": "device_not_found",
                }
            ),
        },
        operation_id="devices_cue_fire",
    )
    def post(self, request, pk: int):
        device = device_of(request.user.shop, pk)
        data = validated(CueInSerializer, request.data)
        stream = None
        if data["stream"] is not None:
            stream = Stream.objects.filter(pk=data["stream"], shop=request.user.shop).first()
            if stream is None:
                raise InvalidStreamParam("stream must be one of your streams.", field="stream")
        cue = cue_fire(device=device, kind=data["kind"], params=data["params"], stream=stream)
        cue.refresh_from_db()  # without a broker it was sent (and maybe acked) already
        return Response(cue_body(cue), status=201)
