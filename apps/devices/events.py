"""The devices' events and their payloads (docs/events.md, docs/devices.md;
creatorcommerce/spine/event_schema.py). Groups: ``shop.<shop>`` (the creator's tools) and the
control room's (``control.<stream>`` or ``control.shop.<shop>``)."""

from creatorcommerce.spine.event_schema import BOOL, DATETIME, INT, STR, Nullable, Obj, declare

_CUE = {"cue": INT, "shop": INT, "room": INT, "device": INT, "stream": Nullable(INT), "kind": STR}

# Handed to the broker (QoS 1), waiting for the device's ack until ``expires_at``.
declare("cue.sent", Obj(**_CUE, event=STR, sent_at=DATETIME, expires_at=DATETIME))
# The device acked ``done`` (``detail`` is its own, or empty); ``latency_ms`` from sent to ack.
declare("cue.acked", Obj(**_CUE, latency_ms=Nullable(INT), detail=STR))
# The device acked ``failed`` (``detail`` is its own), or no ack came by ``expires_at``, or
# the cue expired before it could be sent.
declare("cue.failed", Obj(**_CUE, detail=STR))
# A device's retained status (or last will) changed.
declare("device.status_changed", Obj(device=INT, shop=INT, room=INT, online=BOOL))
