"""On-site orchestration (docs/devices.md): a shop's rooms, the devices in them, the rules
that turn spine events into cues, and the cues themselves with their fate.

Written only by ``services.py``. A device's MQTT password is never stored in clear: once
hashed with Django's password hashers (``make_password``) and once in Mosquitto's own
``$7$`` format, for the broker's password file (docs/devices.md, "Credentials").
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from apps.accounts.models import Shop
from apps.catalog.models import SKU, Location
from apps.streams.models import Stream


class Room(models.Model):
    """A studio or a venue of the shop where devices are."""

    SHOP_PATH = "shop"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="rooms")
    name = models.CharField(max_length=100)
    venue = models.ForeignKey(
        Location, on_delete=models.SET_NULL, null=True, blank=True, related_name="rooms", help_text="the venue, if any"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "name"], name="devices_room_name_unique_per_shop")]

    def __str__(self):
        return self.name


class Device(models.Model):
    SHOP_PATH = "room__shop"

    class Kind(models.TextChoices):
        LED_STRIP = "led_strip", "LED strip"
        LIGHT = "light", "Light"
        HAPTIC = "haptic", "Haptic wearable"
        MIC_ROUTER = "mic_router", "Mic router"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="devices")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The ``<device>`` of its topics (cc/<node>/devices/<device>/...) and its MQTT username;
    # one database is one node, so unique here is unique per node.
    mqtt_id = models.SlugField(max_length=64, unique=True)
    password_hash = models.CharField(max_length=256, editable=False)
    # The same password as Mosquitto's password file holds it (apps/devices/mosquitto.py);
    # empty for a device whose password was set before there was one: reset it.
    mqtt_password_hash = models.CharField(max_length=256, editable=False, blank=True, default="")
    # A disabled device is left out of the broker's password and ACL files (it cannot
    # connect once they are regenerated) and its rules make no cues.
    is_active = models.BooleanField(default=True, help_text="off: the broker lets it in no more")
    online = models.BooleanField(default=False)
    last_seen = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.name} ({self.mqtt_id})"


class EventType(models.TextChoices):
    DEAL_OPENED = "deal.opened", "deal.opened"
    STOCK_CHANGED = "stock.changed", "stock.changed"
    ORDER_PLACED = "order.placed", "order.placed"
    BADGE_AWARDED = "badge.awarded", "badge.awarded"
    STREAM_STARTED = "stream.started", "stream.started"


class CueKind(models.TextChoices):
    PULSE = "pulse", "Pulse"
    FLASH = "flash", "Flash"
    URGENCY = "urgency", "Urgency"
    TAP = "tap", "Tap"
    ROUTE = "route", "Route (mic router)"


class CueRule(models.Model):
    """On ``event_type`` (optionally for one stream or SKU; for ``stock.changed`` only when
    ``available`` is at most ``available_at_most``), send ``kind`` with ``params`` to
    ``device``, to be acknowledged within ``timeout_s``."""

    SHOP_PATH = "shop"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="cue_rules")
    event_type = models.CharField(max_length=32, choices=EventType.choices)
    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, null=True, blank=True, related_name="cue_rules")
    sku = models.ForeignKey(SKU, on_delete=models.CASCADE, null=True, blank=True, related_name="cue_rules")
    available_at_most = models.PositiveIntegerField(
        null=True, blank=True, help_text="stock.changed only: fire when available ≤ this"
    )
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="rules")
    kind = models.CharField(max_length=16, choices=CueKind.choices)
    params = models.JSONField(default=dict, blank=True)
    priority = models.PositiveSmallIntegerField(default=5, validators=[MaxValueValidator(9)])
    timeout_s = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1), MaxValueValidator(300)])
    is_active = models.BooleanField(default=True)

    def __str__(self):
        return f"{self.event_type} → {self.kind} on {self.device_id}"


class Cue(models.Model):
    """One cue to one device. ``queued`` until it is handed to the broker, then ``sent``, then
    ``acked`` or ``failed`` (the device said so, no ack by ``expires_at``, or it expired
    before it could be sent)."""

    SHOP_PATH = "device__room__shop"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        ACKED = "acked", "Acked"
        FAILED = "failed", "Failed"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="cues")
    rule = models.ForeignKey(CueRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="cues")
    stream = models.ForeignKey(Stream, on_delete=models.SET_NULL, null=True, blank=True, related_name="cues")
    kind = models.CharField(max_length=16, choices=CueKind.choices)
    params = models.JSONField(default=dict, blank=True)
    # The spine event it answers ("manual" for a cue fired by hand) and that event's id.
    event_type = models.CharField(max_length=64)
    event_id = models.BigIntegerField(null=True, blank=True)
    priority = models.PositiveSmallIntegerField(default=5)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    detail = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    puback_at = models.DateTimeField(null=True, blank=True, help_text="when the broker confirmed the publish")
    acked_at = models.DateTimeField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True, help_text="sent → ack")
    # Its hand-over to the cues queue failed (the Celery broker was down): the sweep
    # enqueues it again; a cue whose task is on its way is never enqueued twice.
    enqueue_failed = models.BooleanField(default=False)

    class Meta:
        constraints = [
            # A duplicate spine delivery of one event makes one cue per rule.
            models.UniqueConstraint(
                fields=["rule", "event_id"],
                condition=Q(rule__isnull=False, event_id__isnull=False),
                name="devices_one_cue_per_rule_and_event",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="devices_cue_status_expiry"),
            models.Index(fields=["stream", "-issued_at"], name="devices_cue_stream_recent"),
        ]

    def __str__(self):
        return f"cue {self.pk} {self.kind} → {self.device_id} ({self.status})"
