"""The geofences' events (docs/events.md; creatorcommerce/spine/event_schema.py)."""

from creatorcommerce.spine.event_schema import BOOL, DATETIME, INT, Obj, declare

# A venue created or changed (fence, hours, announcement, active...), at its new version.
declare("venue.updated", Obj(venue=INT, shop=INT, version=INT, is_active=BOOL))
declare("venue.deleted", Obj(venue=INT, shop=INT))

# A viewer's presence at a venue changed (docs/geofences.md, "Enter, exit, dwell"). No
# coordinates: which venue, whose shop, who, and when (the ping's ``at``, or the beat's now).
for kind in ("entered", "exited", "dwelled"):
    declare(f"venue.{kind}", Obj(venue=INT, shop=INT, user=INT, at=DATETIME))
