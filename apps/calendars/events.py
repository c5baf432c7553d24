"""The calendars' events and their payloads (docs/events.md; creatorcommerce/spine/event_schema.py).

None has groups: they name a viewer and what they asked for, for handlers only (feeds and
the audience heatmap follow them)."""

from creatorcommerce.spine.event_schema import DATETIME, INT, STR, ListOf, Nullable, Obj, OneOf, declare

from .models import Channel, Reminder

# A viewer saved preferences that differ from what they had: which keys changed (the values
# are in the audit entry, never on the spine).
declare("preferences.updated", Obj(user=INT, changed=ListOf(STR)))

declare("shop.followed", Obj(user=INT, shop=INT))
declare("shop.unfollowed", Obj(user=INT, shop=INT))

CHANNELS = ListOf(OneOf(*Channel.values))
# A reminder created, or recomputed (the drop moved, the viewer's preferences changed, it
# was missed) or cancelled with its drop.
declare(
    "reminder.set",
    Obj(
        reminder=INT,
        user=INT,
        stream=INT,
        status=OneOf(*Reminder.Status.values),
        starts_at=DATETIME,
        deliver_at=Nullable(DATETIME),
        channels=CHANNELS,
    ),
)
declare("reminder.removed", Obj(reminder=INT, user=INT, stream=INT))
declare("reminder.sent", Obj(reminder=INT, user=INT, stream=INT, channels=CHANNELS))
