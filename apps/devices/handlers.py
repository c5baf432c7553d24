"""Spine handlers of the devices app: events become cues (docs/devices.md, "Cue rules").

Runs in one transaction with the record of its run (``apply_handler``), and a cue is unique
per (rule, event): a second delivery of an event makes no second cue. Its runs go to the
``cues`` queue, so cues never wait behind other work; in a worker connected to the MQTT
broker it publishes the cues itself right after its commit (``dispatch.publish_sent``),
else ``tasks.send_cue`` does. Only event types some shop has a rule for are handed
to it at all (``wants``); a cue counts its timeout from the event, so an event handed over
late (a broker that was down) makes a cue that fails as expired rather than one fired late,
and ``redeliver_pending`` stops handing events over once no cue of theirs could be sent."""

from datetime import timedelta

from creatorcommerce.spine.registry import handler

from .dispatch import publish_sent, publishes_here
from .models import EventType
from .selectors import event_type_has_rules
from .services import MAX_TIMEOUT_S, cues_for_event


@handler(
    *EventType.values,
    name="apps.devices.handlers.cues_on_event",
    wants=event_type_has_rules,
    redeliver_within=timedelta(seconds=MAX_TIMEOUT_S),
    queue="cues",
)
def cues_on_event(event):
    cues_for_event(
        event_id=event.pk,
        event_type=event.type,
        payload=event.payload,
        now=event.created_at,
        publish=publish_sent if publishes_here() else None,
    )
