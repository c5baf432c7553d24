"""The experiments API (docs/experiments.md, "API"): client events from the storefront, and
the creators' and staff's list, results and manual pause, resume, stop (and start)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.streams.models import Stream
from creatorcommerce.admin import is_staff, user_shop
from creatorcommerce.api import error_responses
from creatorcommerce.errors import DomainError
from creatorcommerce.throttling import FixedWindowThrottle

from .exceptions import InvalidClientEvents
from .models import Experiment
from .selectors import experiment_body, experiment_get, experiment_results, experiments_visible
from .services import experiment_transition
from .slots import SLOTS

# -- client events ----------------------------------------------------------------------------

EVENT_KEYS = {"kind", "stream", "slot", "variant", "message", "at"}
MAX_MESSAGE = 500
MAX_VARIANT = 32


def _refuse(code: str, message: str, index: int | None = None, field: str | None = None):
    details = {}
    if index is not None:
        details["index"] = index
    if field is not None:
        details["field"] = field
    raise InvalidClientEvents(message, code=code, **details)


def client_events_parse(data) -> list[dict]:
    """The batch, checked whole: any bad event refuses the batch (400 with ``code``,
    ``index`` and ``field``), so nothing of it is stored (docs/experiments.md)."""
    if not isinstance(data, dict) or set(data) != {"events"}:
        _refuse("invalid_batch", 'Send {"events": [...]}.')
    events = data["events"]
    if not isinstance(events, list):
        _refuse("invalid_batch", '"events" is a list.', field="events")
    if not events:
        _refuse("no_events", "Send at least one event.", field="events")
    if len(events) > settings.CLIENT_EVENTS_MAX:
        _refuse("too_many_events", f"At most {settings.CLIENT_EVENTS_MAX} events a batch.", field="events")
    now = timezone.now()
    out = []
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            _refuse("invalid_event", "An event is an object.", i)
        unknown = sorted(set(event) - EVENT_KEYS)
        if unknown:
            _refuse("unknown_field", f"Unknown field {unknown[0]!r}.", i, unknown[0])
        kind = event.get("kind")
        if kind not in ("exposure", "error"):
            _refuse("invalid_kind", 'kind is "exposure" or "error".', i, "kind")
        stream = event.get("stream")
        if type(stream) is not int or not 0 < stream < 2**63:
            _refuse("invalid_stream", "stream is a stream id.", i, "stream")
        slot = event.get("slot")
        if slot is not None and slot not in SLOTS:
            _refuse("invalid_slot", "Unknown slot.", i, "slot")
        variant = event.get("variant")
        if variant is not None and (not isinstance(variant, str) or not 0 < len(variant) <= MAX_VARIANT):
            _refuse("invalid_variant", f"variant is a string of 1-{MAX_VARIANT} characters.", i, "variant")
        if kind == "exposure":
            if slot is None:
                _refuse("missing_field", "An exposure names its slot.", i, "slot")
            if variant is None:
                _refuse("missing_field", "An exposure names its variant.", i, "variant")
            if variant != "control" and variant not in SLOTS[slot].variants:
                _refuse("invalid_variant", "Not a variant of this slot.", i, "variant")
            if "message" in event:
                _refuse("unknown_field", "An exposure has no message.", i, "message")
        message = event.get("message", "")
        if not isinstance(message, str) or len(message) > MAX_MESSAGE or "\x00" in message:
            _refuse("invalid_message", f"message is a string of at most {MAX_MESSAGE} characters.", i, "message")
        at = None
        if "at" in event:
            raw = event["at"]
            at = parse_datetime(raw) if isinstance(raw, str) and len(raw) <= 40 else None
            if at is None or at.tzinfo is None or at > now + timedelta(minutes=1) or at < now - timedelta(days=1):
                _refuse("invalid_at", "at is an ISO time with its offset, within the last day.", i, "at")
        out.append({"kind": kind, "stream": stream, "slot": slot, "variant": variant, "message": message, "at": at})
    known = set(Stream.objects.filter(pk__in={e["stream"] for e in out}).values_list("pk", flat=True))
    for i, event in enumerate(out):
        if event["stream"] not in known:
            _refuse("unknown_stream", "No such stream.", i, "stream")
    return out


class ClientEventsView(APIView):
    """``POST /api/v1/client-events/``: what a storefront client rendered (exposures) and
    what went wrong (errors). Anyone with the page may send; per client rate-limited."""

    permission_classes = [AllowAny]
    throttle_scope = "client_events"

    def get_throttles(self):
        return [FixedWindowThrottle()]

    @extend_schema(
        request=inline_serializer(
            "ClientEvents",
            {
                "events": serializers.ListField(
                    child=serializers.DictField(),
                    help_text='at most 100 of {"kind": "exposure"|"error", "stream", "slot"?, "variant"?, '
                    '"message"?, "at"?}',
                )
            },
        ),
        responses={
            202: inline_serializer(
                "ClientEventsAccepted",
                {
                    "accepted": serializers.IntegerField(),
                    "exposures": serializers.IntegerField(help_text="exposures counted for an experiment"),
                    "errors": serializers.IntegerField(help_text="error events accepted"),
                    "ignored": serializers.IntegerField(
                        help_text="exposures of no running experiment, or not the viewer's variant"
                    ),
                },
            ),
            **error_responses(
                **{
                    "400": "malformed_request, invalid_batch, no_events, too_many_events, invalid_event, "
                    "unknown_field, "
                    "invalid_kind, invalid_stream, unknown_stream, invalid_slot, invalid_variant, missing_field, "
                    "invalid_message, invalid_at (with index and field; nothing stored)",
                    "429": "rate_limited (Retry-After)",
                }
            ),
        },
        operation_id="client_events_create",
    )
    def post(self, request):
        from .services import client_events_record

        events = client_events_parse(request.data)
        user = request.user
        counted = client_events_record(
            user_id=user.pk if user.is_authenticated else None,
            session_key=None if user.is_authenticated else request.session.session_key,
            events=events,
        )
        return Response({"accepted": len(events), **counted}, status=status.HTTP_202_ACCEPTED)


# -- experiments ------------------------------------------------------------------------------


class RampSerializer(serializers.Serializer):
    step = serializers.IntegerField(allow_null=True, help_text="the current step (0-based); null before the first")
    percent = serializers.FloatField(help_text="the share of viewers in the experiment now")
    since = serializers.CharField(allow_null=True)
    next = serializers.DictField(allow_null=True, help_text="{at, percent} of the next step, or null")
    steps = serializers.ListField(child=serializers.DictField(), help_text="[{at, percent}]")


class ExperimentSerializer(serializers.Serializer):
    """An experiment as the API answers it (documentation only)."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    shop = serializers.CharField(allow_null=True, help_text="the shop's slug; null: platform-wide")
    slot = serializers.ChoiceField(choices=list(SLOTS))
    unit = serializers.ChoiceField(
        choices=["viewer", "stream"], help_text="who is assigned and counted: viewers, or whole streams"
    )
    status = serializers.ChoiceField(choices=Experiment.Status.choices)
    variants = serializers.ListField(child=serializers.DictField(), help_text="[{key, weight}], control first")
    ramp = RampSerializer()
    reason = serializers.CharField(help_text="why it was rolled back, paused or stopped")
    created_at = serializers.CharField()
    started_at = serializers.CharField(allow_null=True)
    ended_at = serializers.CharField(allow_null=True)


class IntervalSerializer(serializers.Serializer):
    value = serializers.FloatField()
    low = serializers.FloatField()
    high = serializers.FloatField()


class VariantResultSerializer(serializers.Serializer):
    variant = serializers.CharField()
    weight = serializers.FloatField()
    exposures = serializers.IntegerField(help_text="exposed viewers (streams, for a stream-level slot)")
    conversions = serializers.IntegerField(help_text="converted viewers (streams)")
    errors = serializers.IntegerField(help_text="exposed viewers who reported a client error")
    rate = serializers.FloatField(allow_null=True)
    rate_low = serializers.FloatField(allow_null=True, help_text="95 % Wilson interval")
    rate_high = serializers.FloatField(allow_null=True)
    difference = IntervalSerializer(allow_null=True, help_text="rate minus control's (Newcombe, 95 %)")
    uplift = IntervalSerializer(allow_null=True, help_text="rate / control's - 1 (log ratio, 95 %)")


class ResultsSerializer(ExperimentSerializer):
    results = VariantResultSerializer(many=True)
    guardrail = serializers.DictField(help_text="the last guardrail evaluation")


class CreatorOrStaff(BasePermission):
    message = "Only creators and staff see experiments."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and (is_staff(user) or user_shop(user) is not None))


_OWNER_ERRORS = {"401": "not_authenticated", "403": "permission_denied (a viewer)"}


class ExperimentsView(APIView):
    permission_classes = [CreatorOrStaff]

    @extend_schema(
        responses={200: ExperimentSerializer(many=True), **error_responses(**_OWNER_ERRORS)},
        operation_id="experiments_list",
    )
    def get(self, request):
        return Response([experiment_body(e) for e in experiments_visible(user=request.user)[:200]])


class ExperimentResultsView(APIView):
    permission_classes = [CreatorOrStaff]

    @extend_schema(
        responses={
            200: ResultsSerializer,
            **error_responses(**_OWNER_ERRORS, **{"404": "experiment_not_found (also another shop's)"}),
        },
        operation_id="experiments_results",
    )
    def get(self, request, pk: int):
        return Response(experiment_results(experiment_get(user=request.user, experiment_id=pk)))


class ExperimentActionView(APIView):
    """``POST /api/v1/experiments/{id}/start|pause|resume|stop`` ``{"reason"?}``."""

    permission_classes = [CreatorOrStaff]
    verb = ""

    @extend_schema(
        request=inline_serializer(
            "ExperimentAction", {"reason": serializers.CharField(required=False, max_length=2000)}
        ),
        responses={
            200: ExperimentSerializer,
            **error_responses(
                **_OWNER_ERRORS,
                **{
                    "400": "invalid_reason, malformed_request",
                    "404": "experiment_not_found",
                    "409": "invalid_transition, slot_busy",
                },
            ),
        },
    )
    def post(self, request, pk: int):
        experiment = experiment_get(user=request.user, experiment_id=pk)
        data = request.data if request.data else {}
        reason = data.get("reason", "") if isinstance(data, dict) else None
        if not isinstance(data, dict) or set(data) - {"reason"} or not isinstance(reason, str) or len(reason) > 2000:
            raise DomainError('Send {"reason"?: text of at most 2000 characters}.', code="invalid_reason")
        experiment = experiment_transition(experiment=experiment, verb=self.verb, actor=request.user, reason=reason)
        return Response(experiment_body(experiment))
