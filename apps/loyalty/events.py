"""The loyalty app's events and their payloads (docs/events.md; creatorcommerce/spine/event_schema.py)."""

from creatorcommerce.spine.event_schema import INT, STR, Nullable, Obj, declare

# -- badges awarded (helper L1: rules, awards) -----------------------------------------------

# A badge granted to a viewer (automatically, or approved by staff). ``name``/``icon`` are
# the badge's; ``display_name`` only what the viewer chose to show, or null; ``stream`` the
# drop it was won in, or null. Groups: ``shop.<id>``, and ``stream.<id>`` for a stream's
# award (its viewers see an ``interaction`` of kind ``badge``; docs/streams.md). Pending
# awards emit nothing until they are approved (docs/loyalty.md, "Badges and rules").
declare(
    "badge.awarded",
    Obj(
        award=INT,
        badge=INT,
        shop=INT,
        user=INT,
        stream=Nullable(INT),
        name=STR,
        icon=STR,
        display_name=Nullable(STR),
    ),
)

# -- end of badges awarded -------------------------------------------------------------------
