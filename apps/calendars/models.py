"""Preference-first calendars (docs/calendars.md): a viewer's preferences and weekly
windows, follows of shops, reminders per viewer and drop, their deliveries per channel, and
in-app notifications.

Written only by ``services.py``. Times of day are stored as minutes since local midnight
(a window may end at 1440, "24:00"); the API shows them as "HH:MM".
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.accounts.models import Shop
from apps.streams.models import Stream


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    INAPP = "inapp", "In-app"


class Preference(models.Model):
    """A viewer's calendar preferences; a viewer who never saved any has no row (defaults:
    ``selectors.DEFAULTS``)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="calendar_preference"
    )
    time_zone = models.CharField(max_length=64)
    quiet_start = models.PositiveSmallIntegerField(null=True, blank=True, help_text="minutes since local midnight")
    quiet_end = models.PositiveSmallIntegerField(null=True, blank=True, help_text="minutes since local midnight")
    channels = models.JSONField(default=list)
    lead_minutes = models.PositiveIntegerField(default=15)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(quiet_start__isnull=True) & Q(quiet_end__isnull=True))
                | (Q(quiet_start__lt=24 * 60) & Q(quiet_end__lt=24 * 60) & ~Q(quiet_start=models.F("quiet_end"))),
                name="calendars_quiet_hours_valid",
            ),
            models.CheckConstraint(condition=Q(lead_minutes__lte=7 * 24 * 60), name="calendars_lead_at_most_a_week"),
        ]

    def __str__(self):
        return f"preferences of {self.user_id}"


class Window(models.Model):
    """One weekly window of a viewer: ``[start, end)`` of local weekday ``weekday``
    (Monday = 0). Windows of one day never overlap (``services.preferences_set`` checks)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_windows")
    weekday = models.PositiveSmallIntegerField()
    start = models.PositiveSmallIntegerField(help_text="minutes since local midnight")
    end = models.PositiveSmallIntegerField(help_text="minutes since local midnight; 1440 is the day's end")

    class Meta:
        ordering = ("user", "weekday", "start")
        constraints = [
            models.CheckConstraint(
                condition=Q(weekday__lte=6) & Q(start__lt=models.F("end")) & Q(end__lte=24 * 60),
                name="calendars_window_valid",
            ),
            models.UniqueConstraint(fields=("user", "weekday", "start"), name="calendars_window_once"),
        ]

    def __str__(self):
        return f"{self.user_id} day {self.weekday} {self.start}-{self.end}"


class Follow(models.Model):
    """A viewer follows a shop (its drops' feed and the creator's audience)."""

    SHOP_PATH = "shop"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="follows")
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="follows")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ("-created_at", "pk")
        constraints = [models.UniqueConstraint(fields=("user", "shop"), name="calendars_follow_once")]

    def __str__(self):
        return f"{self.user_id} follows {self.shop_id}"


class Reminder(models.Model):
    """One per viewer and drop. ``deliver_at`` is recomputed (``services.reminders_recompute``)
    when the drop moves or the viewer's preferences change, until it is sent."""

    SHOP_PATH = "stream__shop"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"  # goes out at deliver_at
        SENT = "sent", "Sent"  # claimed by the dispatcher: its deliveries exist
        UNSCHEDULABLE = "unschedulable", "No free time before the drop"
        MISSED = "missed", "Too late (quiet hours, or the drop started)"
        CANCELLED = "cancelled", "The drop was cancelled"

    PENDING = (Status.SCHEDULED, Status.UNSCHEDULABLE, Status.MISSED)  # recomputed on a change

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reminders")
    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="reminders")
    channels = models.JSONField(default=list)
    starts_at = models.DateTimeField(help_text="the drop's start that deliver_at was computed for")
    deliver_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("starts_at", "pk")
        constraints = [
            models.UniqueConstraint(fields=("user", "stream"), name="calendars_reminder_once"),
            models.CheckConstraint(
                condition=~Q(status="scheduled") | Q(deliver_at__isnull=False),
                name="calendars_scheduled_has_deliver_at",
            ),
        ]
        indexes = [
            models.Index(fields=["deliver_at"], name="calendars_reminder_due", condition=Q(status="scheduled")),
        ]

    def __str__(self):
        return f"reminder of {self.user_id} for {self.stream_id}"


class Delivery(models.Model):
    """One message of a reminder on one channel: at most one per viewer, drop and channel
    (the unique constraint), even if the reminder is stopped and set again. An in-app one is
    written ``sent`` with its notification; an e-mail one is ``pending`` until a dispatcher
    claims it (``pending`` -> ``sending`` by a conditional UPDATE) and sends it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        STOPPED = "stopped", "Stopped before it was sent"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="+")
    reminder = models.ForeignKey(Reminder, on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=8, choices=Status.choices)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=("user", "stream", "channel"), name="calendars_delivery_once"),
        ]
        indexes = [models.Index(fields=["status"], name="calendars_delivery_pending", condition=Q(status="pending"))]

    def __str__(self):
        return f"{self.channel} to {self.user_id} for {self.stream_id} ({self.status})"


class Notification(models.Model):
    """An in-app message to a viewer (``GET /api/v1/me/notifications/``)."""

    class Kind(models.TextChoices):
        REMINDER = "reminder", "Reminder"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    stream = models.ForeignKey(Stream, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    title = models.CharField(max_length=300)
    body = models.TextField()
    url = models.CharField(max_length=500, blank=True)
    stop_url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-pk")
        indexes = [models.Index(fields=["user", "-created_at"], name="calendars_notifications_of")]

    def __str__(self):
        return self.title


class CalendarFeed(models.Model):
    """A viewer's private ICS feed (docs/calendars.md, "Feeds"): exists only while they have
    granted calendar consent. The feed's URL carries a token derived from ``nonce`` with the
    server's secret key (``feeds.feed_token``); only its SHA-256 is stored to find the
    feed, so a copy of the database alone gives no feed URL. Rotating replaces the nonce."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="calendar_feed"
    )
    nonce = models.CharField(max_length=64)
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the URL's token, hex")
    created_at = models.DateTimeField(help_text="when this token was issued (opt-in or rotation)")

    def __str__(self):
        return f"calendar feed of {self.user_id}"
