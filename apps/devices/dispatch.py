"""Publishing cues (docs/devices.md, "Dispatch"): right after the spine handler's commit in
the worker that made them (``publish_sent``), or by ``tasks.send_cue`` on the ``cues`` queue
(``dispatch``) when that could not be done at once."""

from __future__ import annotations

import logging

from celery import current_app
from django.conf import settings
from django.utils import timezone

from .models import Cue
from .services import cue_claim_republish, cue_expire, cue_mark_published, cue_mark_sent, cue_record_ack
from .transport import PublishFailed, cue_message, driver, topic

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
    _simulate_acks(transport, [cue])
    return "sent"


def _simulate_acks(transport, cues) -> None:
    if transport.name == "log" and settings.DEVICES_SIMULATE_IN_PROCESS:
        # Embedded mode: the device simulator's behaviour runs here, so the demo shows acks.
        for cue in cues:
            cue_record_ack(mqtt_id=cue.device.mqtt_id, message={"id": cue.pk, "status": "done", "detail": "simulated"})


def publishes_here() -> bool:
    """True where the spine handler may publish its cues itself, right after its commit
    (``publish_sent``): in a worker (a handler that runs eagerly runs in the request or
    command that committed the event, which must not wait on the MQTT broker: there
    ``send_cue`` or the sending thread does it) whose connection to the broker is up (else
    the cues stay ``queued`` for ``send_cue``, which waits for it)."""
    if current_app.conf.task_always_eager:
        return False
    transport = driver()
    return transport.name == "log" or transport.connected.is_set()


def publish_sent(cues) -> None:
    """Publish cues the handler made ``sent`` in its transaction (just committed), from this
    worker: no second task, no second read of them. One the broker did not confirm goes to
    ``send_cue``'s retries, as a failed publish there would (``cue_claim_republish``)."""
    from .tasks import send_cue

    transport = driver()
    confirmed = []
    for cue in cues:
        try:
            transport.publish(topic(cue.device.mqtt_id, "cue"), cue_message(cue))
        except PublishFailed:
            log.warning("cue %s: publish not confirmed; retrying", cue.pk, exc_info=True)
            countdown = retry_in(cue.pk, 0)
            if countdown is not None:
                send_cue.apply_async((cue.pk,), countdown=countdown)
            continue
        confirmed.append(cue)
    cue_mark_published(cue_ids=[cue.pk for cue in confirmed])
    _simulate_acks(transport, confirmed)


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
