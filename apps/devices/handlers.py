"""Spine handlers of the devices app: events become cues (docs/devices.md, "Cue rules").

Runs in one transaction with the record of its run (``apply_handler``), and a cue is unique
per (rule, event): a second delivery of an event makes no second cue. Publishing happens
after commit, in ``tasks.send_cue``."""

from creatorcommerce.spine.registry import handler

from .models import EventType
from .services import cues_for_event


@handler(*EventType.values, name="apps.devices.handlers.cues_on_event")
def cues_on_event(event):
    cues_for_event(event_id=event.pk, event_type=event.type, payload=event.payload)
