"""Spine handlers of the calendars app: reminders follow their drop (docs/calendars.md,
"When a drop moves").

Each runs in one transaction with the record of its run (``apply_handler``); recomputing is
idempotent anyway.
"""

from creatorcommerce.spine.registry import handler

from .services import reminders_cancel_for_stream, reminders_follow_stream

# What a reminder depends on in a drop's ``stream.updated``: its time (and a change of
# status an edit may carry).
DROP_FIELDS = {"starts_at", "status"}


@handler("stream.updated", name="apps.calendars.handlers.reminders_on_stream_updated")
def reminders_on_stream_updated(event):
    if DROP_FIELDS & set(event.payload.get("changed", ())):
        reminders_follow_stream(stream_id=event.payload["stream"])


# ``stream.cancelled`` (the Creators' API for drops) only needs ``"stream"`` in its payload.
@handler("stream.cancelled", name="apps.calendars.handlers.reminders_on_stream_cancelled")
def reminders_on_stream_cancelled(event):
    reminders_cancel_for_stream(stream_id=event.payload["stream"])
