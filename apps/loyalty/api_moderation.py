"""Staff moderation of awards over the API (docs/loyalty.md, "Staff moderation"):
``GET /api/v1/moderation/awards/``, ``POST .../{id}/approve/``, ``POST .../{id}/revoke/``.
Staff only; anyone else signed in gets 403 ``permission_denied``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from creatorcommerce.api import error_responses, validated
from creatorcommerce.errors import DomainError, NotFound
from creatorcommerce.fields import StrictCharField

from .models import Award
from .moderation import REASON_MAX_LENGTH, award_approve, award_revoke, moderation_allowed

# At most this many awards in one answer, newest first (narrow with ``stream``).
LIST_LIMIT = 500


class IsModerator(BasePermission):
    """Active staff (``moderation.moderation_allowed``)."""

    message = "Only staff moderate awards."

    def has_permission(self, request, view):
        return moderation_allowed(request.user)


class AwardNotFound(NotFound):
    code = "award_not_found"
    message = "No such award."


class BadQuery(DomainError):
    code = "invalid_query"
    message = "The query parameters are invalid."


class _BadgeOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    icon = serializers.CharField()


class _UserOut(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()


class ModeratedAwardSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    badge = _BadgeOut()
    user = _UserOut()
    status = serializers.ChoiceField(choices=Award.Status.values)
    awarded_at = serializers.DateTimeField()
    reason = serializers.CharField(allow_null=True, help_text="why it was revoked; null unless revoked")


def award_body(award: Award) -> dict:
    badge, user = award.badge, award.user
    return {
        "id": award.pk,
        "badge": {"id": badge.pk, "name": badge.name, "icon": badge.icon},
        "user": {"id": user.pk, "email": user.email},
        "status": award.status,
        "awarded_at": award.awarded_at,
        "reason": award.reason or None if award.status == Award.Status.REVOKED else None,
    }


def _award(pk: int) -> Award:
    award = Award.objects.select_related("badge", "user").filter(pk=pk).first()
    if award is None:
        raise AwardNotFound()
    return award


def _positive_int(params, name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    # ASCII digits only: str.isdigit() is also true for '²' (which int() refuses: a 500)
    # and for other scripts' digits.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise BadQuery(f"{name} must be an id.")
    return int(raw)


class ModerationAwardsView(APIView):
    permission_classes = [IsModerator]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status", str, enum=Award.Status.values, description="which awards (default: pending, the queue)"
            ),
            OpenApiParameter("stream", int, description="only awards won during this stream (a drop)"),
            OpenApiParameter("badge", int, description="only this badge's awards"),
        ],
        responses={
            200: ModeratedAwardSerializer(many=True),
            **error_responses(**{"400": "invalid_query", "403": "permission_denied (not staff)"}),
        },
        operation_id="moderation_awards_list",
    )
    def get(self, request):
        status = request.query_params.get("status", Award.Status.PENDING)
        if status not in Award.Status.values:
            raise BadQuery(f"status must be one of {', '.join(Award.Status.values)}.")
        awards = Award.objects.filter(status=status).select_related("badge", "user")
        stream, badge = _positive_int(request.query_params, "stream"), _positive_int(request.query_params, "badge")
        if stream is not None:
            awards = awards.filter(stream_id=stream)
        if badge is not None:
            awards = awards.filter(badge_id=badge)
        return Response([award_body(award) for award in awards.order_by("-awarded_at", "pk")[:LIST_LIMIT]])


class ApproveView(APIView):
    permission_classes = [IsModerator]

    @extend_schema(
        request=None,
        responses={
            200: ModeratedAwardSerializer,
            **error_responses(
                **{
                    "403": "permission_denied (not staff)",
                    "404": "award_not_found",
                    "409": "award_not_pending (granted already, or revoked)",
                }
            ),
        },
        operation_id="moderation_award_approve",
    )
    def post(self, request, pk: int):
        award = award_approve(award=_award(pk), actor=request.user)
        return Response(award_body(_award(award.pk)))


class RevokeInSerializer(serializers.Serializer):
    reason = StrictCharField(
        required=False,
        allow_blank=True,
        allow_null=True,  # null is a missing reason (reason_required), not a wrong type
        multiline=True,
        max_length=REASON_MAX_LENGTH,
        help_text="why (required, not blank); kept in the audit log",
    )


class RevokeView(APIView):
    permission_classes = [IsModerator]

    @extend_schema(
        request=inline_serializer("AwardRevokeIn", {"reason": serializers.CharField(max_length=REASON_MAX_LENGTH)}),
        responses={
            200: ModeratedAwardSerializer,
            **error_responses(
                **{
                    "400": "reason_required (missing, null or blank), invalid (not a string, too long)",
                    "403": "permission_denied (not staff)",
                    "404": "award_not_found",
                }
            ),
        },
        operation_id="moderation_award_revoke",
    )
    def post(self, request, pk: int):
        data = validated(RevokeInSerializer, request.data)
        award = _award(pk)
        award = award_revoke(award=award, actor=request.user, reason=data.get("reason") or "")
        return Response(award_body(_award(award.pk)))
