"""The calendars API (docs/calendars.md): ``/api/v1/me/preferences/``, follows, reminders
and in-app notifications."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.streams.selectors import stream_get
from creatorcommerce.api import error_responses, validated
from creatorcommerce.fields import StrictCharField, StrictIntegerField, iso_utc

from .exceptions import NotYourShop
from .feeds import feed_url
from .models import Channel, Reminder
from .selectors import (
    audience_heatmap,
    follows_of,
    heatmap_body,
    notification_body,
    notifications_of,
    preferences_body,
    reminder_body,
    reminders_of,
    shop_by_slug,
    viewer_settings,
)
from .services import (
    feed_get,
    feed_rotate,
    follow_delete,
    follow_set,
    notification_mark_read,
    preferences_parse,
    preferences_set,
    reminder_delete,
    reminder_set,
)

# -- preferences ------------------------------------------------------------------------------

PREFERENCE_CODES = (
    "invalid (a key missing or of the wrong type), malformed_request, invalid_time_zone, invalid_time, "
    "invalid_quiet_hours, invalid_window, overlapping_windows, invalid_channel, invalid_lead_minutes"
)


class QuietHoursSerializer(serializers.Serializer):
    start = StrictCharField(help_text='"HH:MM" local time, 00:00-23:59; quiet from here (inclusive)')
    end = StrictCharField(help_text='"HH:MM" local time; quiet until here (exclusive); before start: over midnight')


class WindowSerializer(serializers.Serializer):
    weekday = StrictIntegerField(help_text="0 (Monday) to 6 (Sunday), in the viewer's zone")
    start = StrictCharField(help_text='"HH:MM"')
    end = StrictCharField(help_text='"HH:MM", after start on the same day; "24:00" for midnight')


class PreferencesSerializer(serializers.Serializer):
    time_zone = StrictCharField(help_text="an IANA time zone such as America/New_York")
    quiet_hours = QuietHoursSerializer(allow_null=True, help_text="[start, end) local time, or null for none")
    windows = WindowSerializer(
        many=True, help_text="when reminders may arrive (several a day allowed, no overlaps); empty: any time"
    )
    channels = serializers.ListField(
        child=StrictCharField(), help_text=f"any of {', '.join(Channel.values)} (none: no messages)"
    )
    lead_minutes = StrictIntegerField(help_text="elapsed minutes before the drop, 0 to 10080")


class PreferencesView(APIView):
    """``GET|PUT /api/v1/me/preferences/``: the viewer's calendar preferences; PUT replaces
    them all (every key required)."""

    @extend_schema(responses={200: PreferencesSerializer}, operation_id="me_preferences_get")
    def get(self, request):
        return Response(preferences_body(viewer_settings(user=request.user)))

    @extend_schema(
        request=PreferencesSerializer,
        responses={200: PreferencesSerializer, **error_responses(**{"400": PREFERENCE_CODES})},
        operation_id="me_preferences_set",
    )
    def put(self, request):
        data = request.data
        validated(PreferencesSerializer, data)  # keys and types; the rules are the service's
        prefs = preferences_parse(
            time_zone=data["time_zone"],
            quiet_hours=data["quiet_hours"],
            windows=data["windows"],
            channels=data["channels"],
            lead_minutes=data["lead_minutes"],
        )
        outcome = preferences_set(user=request.user, prefs=prefs)
        return Response(preferences_body(outcome.settings))


# -- follows ----------------------------------------------------------------------------------


class FollowSerializer(serializers.Serializer):
    shop = serializers.CharField(help_text="the shop's slug")
    followed_at = serializers.DateTimeField()


def _follow_body(follow) -> dict:
    return {"shop": follow.shop.slug, "followed_at": iso_utc(follow.created_at)}


class FollowView(APIView):
    """``POST|DELETE /api/v1/shops/{slug}/follow/``: follow a shop, or stop (both idempotent)."""

    @extend_schema(
        request=None,
        responses={
            200: FollowSerializer,
            201: FollowSerializer,
            **error_responses(**{"404": "shop_not_found"}),
        },
        operation_id="shops_follow",
    )
    def post(self, request, slug: str):
        follow, created = follow_set(user=request.user, shop=shop_by_slug(slug=slug))
        return Response(_follow_body(follow), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        request=None,
        responses={204: None, **error_responses(**{"404": "shop_not_found"})},
        operation_id="shops_unfollow",
    )
    def delete(self, request, slug: str):
        follow_delete(user=request.user, shop=shop_by_slug(slug=slug))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MyFollowsView(APIView):
    """``GET /api/v1/me/follows/``: the shops the viewer follows, newest first."""

    @extend_schema(responses={200: FollowSerializer(many=True)}, operation_id="me_follows_list")
    def get(self, request):
        return Response([_follow_body(follow) for follow in follows_of(user=request.user)])


# -- reminders --------------------------------------------------------------------------------


class ReminderSerializer(serializers.Serializer):
    stream = serializers.IntegerField()
    starts_at = serializers.DateTimeField(help_text="the drop's start (UTC)")
    deliver_at = serializers.DateTimeField(
        allow_null=True, help_text="when the reminder goes out (UTC); null unless status is scheduled"
    )
    channels = serializers.ListField(child=serializers.ChoiceField(choices=Channel.values))
    status = serializers.ChoiceField(choices=Reminder.Status.values)


class ReminderView(APIView):
    """``POST|DELETE /api/v1/streams/{id}/reminder/``: one reminder per viewer and drop."""

    @extend_schema(
        request=None,
        responses={
            200: ReminderSerializer,
            201: ReminderSerializer,
            **error_responses(**{"404": "stream_not_found", "409": "stream_not_scheduled"}),
        },
        operation_id="streams_reminder_set",
    )
    def post(self, request, pk: int):
        reminder, created = reminder_set(user=request.user, stream=stream_get(stream_id=pk))
        return Response(reminder_body(reminder), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        request=None,
        responses={204: None, **error_responses(**{"404": "stream_not_found"})},
        operation_id="streams_reminder_delete",
    )
    def delete(self, request, pk: int):
        stream = stream_get(stream_id=pk)
        reminder_delete(user_id=request.user.pk, stream_id=stream.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MyRemindersView(APIView):
    """``GET /api/v1/me/reminders/``: the viewer's reminders, soonest drop first."""

    @extend_schema(responses={200: ReminderSerializer(many=True)}, operation_id="me_reminders_list")
    def get(self, request):
        return Response([reminder_body(reminder) for reminder in reminders_of(user=request.user)])


# -- notifications ----------------------------------------------------------------------------


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=["reminder"])
    stream = serializers.IntegerField(allow_null=True)
    title = serializers.CharField()
    body = serializers.CharField()
    url = serializers.CharField(help_text="the drop's page")
    stop_url = serializers.CharField(allow_null=True, help_text="one-click stop link of the reminder")
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)


class NotificationsView(APIView):
    """``GET /api/v1/me/notifications/``: the viewer's in-app messages, newest first."""

    @extend_schema(responses={200: NotificationSerializer(many=True)}, operation_id="me_notifications_list")
    def get(self, request):
        return Response([notification_body(n) for n in notifications_of(user=request.user)])


class NotificationReadView(APIView):
    """``POST /api/v1/me/notifications/{id}/read/``: mark one read."""

    @extend_schema(
        request=None,
        responses={200: NotificationSerializer, **error_responses(**{"404": "notification_not_found"})},
        operation_id="me_notifications_read",
    )
    def post(self, request, pk: int):
        return Response(notification_body(notification_mark_read(user=request.user, notification_id=pk)))


# -- the private feed -------------------------------------------------------------------------


class FeedUrlSerializer(serializers.Serializer):
    feed_url = serializers.CharField(help_text="the viewer's private ICS feed; keep it secret")


class CalendarFeedView(APIView):
    """``GET|POST /api/v1/me/calendar-feed/``: the private feed's URL; POST rotates it (the
    old URL answers 404). Both need calendar consent (docs/calendars.md, "Feeds")."""

    @extend_schema(
        responses={200: FeedUrlSerializer, **error_responses(**{"409": "calendar_consent_required"})},
        operation_id="me_calendar_feed_get",
    )
    def get(self, request):
        return Response({"feed_url": feed_url(feed_get(user=request.user))})

    @extend_schema(
        request=None,
        responses={200: FeedUrlSerializer, **error_responses(**{"409": "calendar_consent_required"})},
        operation_id="me_calendar_feed_rotate",
    )
    def post(self, request):
        return Response({"feed_url": feed_url(feed_rotate(user=request.user))})


# -- the audience heatmap ---------------------------------------------------------------------


class HeatmapSerializer(serializers.Serializer):
    time_zone = serializers.CharField(help_text="the creator's zone: the slots' hours are local to it")
    week_start = serializers.DateField(help_text="the Monday of the week counted, in that zone")
    followers = serializers.IntegerField()
    counts = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="7 lists (Monday first) of 24 counts: followers available at the hour's first instant",
    )
    missing_hours = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="[weekday, hour] slots that do not exist that week (clocks skip them); counted 0",
    )


class WeekSerializer(serializers.Serializer):
    week = serializers.DateField(required=False, help_text="any day of the week wanted (default: this week)")


class AudienceAvailabilityView(APIView):
    """``GET /api/v1/shops/{slug}/audience-availability/``: the audience heatmap, for the
    shop's creator and staff (docs/calendars.md, "Audience heatmap")."""

    @extend_schema(
        parameters=[WeekSerializer],
        responses={
            200: HeatmapSerializer,
            **error_responses(**{"400": "invalid", "403": "not_your_shop", "404": "shop_not_found"}),
        },
        operation_id="shops_audience_availability",
    )
    def get(self, request, slug: str):
        shop = shop_by_slug(slug=slug)
        if not (request.user.is_staff or shop.owner_id == request.user.pk):
            raise NotYourShop()
        week = validated(WeekSerializer, request.query_params).get("week")
        return Response(heatmap_body(audience_heatmap(shop=shop, week_start=week)))
