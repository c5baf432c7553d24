import uuid

from django.db import models
from django.utils import timezone


class OutboxEvent(models.Model):
    """A domain event, written in the same transaction as the change it describes.

    The outbox is the durable log: fan-out and handlers run from it after commit, and edge
    nodes replicate it to the cloud.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=100, db_index=True)
    payload = models.JSONField(default=dict)
    groups = models.JSONField(default=list, blank=True)
    node = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The node's own contiguous sequence, stamped by the edge's sync relay on committed
    # events in id order (ids are not committed in id order on PostgreSQL), never on the buy
    # path; null until stamped, and forever on a cloud node (docs/edge.md, "Sequence").
    seq = models.BigIntegerField(null=True, blank=True, editable=False)
    # The id of the request (or of the event whose handler) that recorded it, for logs that
    # follow a buy through its events (creatorcommerce/logs.py); "" when none. Not part of
    # the payload, the Channels message or a sync batch.
    request_id = models.CharField(max_length=128, blank=True, default="", editable=False)

    class Meta:
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(
                fields=("seq",), condition=models.Q(seq__isnull=False), name="spine_outbox_one_seq"
            ),
        ]
        indexes = [
            # The events the relay has still to stamp: only those, so stamping reads no history.
            models.Index(fields=("id",), condition=models.Q(seq__isnull=True), name="spine_outbox_unstamped"),
        ]

    def __str__(self):
        return f"{self.type} {self.uuid}"

    def as_message(self) -> dict:
        """The Channels message: its ``type`` is the event type (``stock.changed`` is
        handled by a consumer's ``stock_changed`` method)."""
        return {
            "type": self.type,
            "id": self.pk,
            "event": str(self.uuid),
            "node": self.node,
            "payload": self.payload,
            "created_at": self.created_at.isoformat(),
        }


class HandlerRun(models.Model):
    """One handler applied to one event: the unique pair is what makes handlers idempotent."""

    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="runs")
    handler = models.CharField(max_length=200)
    processed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("event", "handler"), name="spine_handlerrun_once"),
        ]

    def __str__(self):
        return f"{self.handler} <- {self.event_id}"
