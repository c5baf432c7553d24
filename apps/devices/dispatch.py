"""Publishing one cue (docs/devices.md, "Dispatch"): run by ``tasks.send_cue`` on the
``cues`` queue."""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone

from .models import Cue
from .services import cue_claim_republish, cue_expire, cue_mark_published, cue_mark_sent, cue_record_ack
from .transport import cue_message, driver, topic

log = logging.getLogger(__name__)


def dispatch(cue_id: int, *, now=None) -> str:
    """Send cue ``cue_id`` if it still should go: ``expired`` (its ``expires_at`` passed
    before it was sent: failed, never published), ``sent`` (the broker confirmed it), or
    ``skipped`` (acked, failed or confirmed already, or another task is publishing it).
    Raises ``PublishFailed`` when the broker is away (the cue stays ``queued``) or did not
    confirm (it stays ``sent``): the task retries until the cue expires, one publisher at a
    time (``cue_claim_republish``; a device ignores an id it has seen, so a second publish
    is harmless, a late one is not made)."""
    now = now or timezone.now()
    cue = Cue.objects.select_related("device__room").filter(pk=cue_id).first()
    if cue is None:
        return "skipped"
    transport = driver()
    if cue.status == Cue.Status.QUEUED:
        if cue.expires_at <= now:
            cue_expire(cue_id=cue_id)
            return "expired"
        # While the broker is away the cue stays queued (nothing left): it is sent once the
        # connection is back, or fails as expired.
        transport.ready()
        if cue.expires_at <= timezone.now():
            cue_expire(cue_id=cue_id)
            return "expired"
        if not cue_mark_sent(cue=cue):
            return "skipped"
    elif cue.status != Cue.Status.SENT or cue.puback_at is not None:
        return "skipped"
    elif cue.expires_at <= now:
        return "expired"  # sent, never confirmed: the sweep fails it
    elif not cue_claim_republish(cue_id=cue_id):
        return "skipped"  # another task publishes it (or did less than a PUBACK wait ago)
    transport.publish(topic(cue.device.mqtt_id, "cue"), cue_message(cue))
    cue_mark_published(cue_id=cue_id)
    if transport.name == "log" and settings.DEVICES_SIMULATE_IN_PROCESS:
        # Embedded mode: the device simulator's behaviour runs here, so the demo shows acks.
        cue_record_ack(mqtt_id=cue.device.mqtt_id, message={"id": cue.pk, "status": "done", "detail": "simulated"})
    return "sent"


def retry_in(cue_id: int, attempt: int) -> float | None:
    """After a failed publish (attempt 0, 1, ...): the seconds until the next try, with
    backoff (0.25 s doubling, at most 5 s) and never past the cue's expiry; ``None`` when
    it has expired (failed, if it never left; one that did is the sweep's to fail)."""
    expires_at = Cue.objects.filter(pk=cue_id).values_list("expires_at", flat=True).first()
    remaining = (expires_at - timezone.now()).total_seconds() if expires_at else 0
    if remaining <= 0:
        cue_expire(cue_id=cue_id)
        return None
    return min(0.25 * 2**attempt, 5.0, remaining)
