"""The streams' events and their payloads (docs/events.md; creatorcommerce/spine/event_schema.py)."""

from creatorcommerce.spine.event_schema import DATETIME, DECIMAL, INT, STR, ListOf, Nullable, Obj, OneOf, declare

from .models import Stream

for kind, status in (("started", Stream.Status.LIVE), ("ended", Stream.Status.ENDED)):
    declare(f"stream.{kind}", Obj(stream=INT, shop=INT, status=OneOf(status)))

# An open deal as viewers see it (``selectors.deal_body``).
DEAL = Obj(id=INT, price=DECIMAL, ends_at=DATETIME, per_buyer_limit=Nullable(INT), remaining=INT, version=INT)

# The whole list of a stream's pins, in order (``selectors.stream_pins``).
PIN = Obj(
    sku=STR,
    sku_id=INT,
    title=STR,
    image_url=STR,
    price=DECIMAL,
    currency=STR,
    per_buyer_limit=Nullable(INT),
    available=INT,
    level=Nullable(INT),
    version=INT,
    deal=Nullable(DEAL),
)
declare("pins.changed", Obj(stream=INT, pins=ListOf(PIN)))

# A deal's absolute state; ``deal`` is null unless it is open (``deal.closed``).
for kind in ("opened", "changed", "closed"):
    declare(
        f"deal.{kind}",
        Obj(stream=INT, sku=STR, sku_id=INT, deal_id=INT, version=INT, remaining=INT, deal=Nullable(DEAL)),
    )

declare("presence.counted", Obj(stream=INT, viewers=INT))

# A stream as its creator scheduled or edited it; ``changed`` (stream.updated only) names
# the fields that changed (``starts_at`` among them when the drop moved). ``sequence`` is the
# stream's calendar SEQUENCE after the change (docs/streams.md, "Creators' API for drops").
_STREAM = {
    "stream": INT,
    "shop": INT,
    "status": STR,
    "title": STR,
    "starts_at": DATETIME,
    "ends_at": Nullable(DATETIME),
    "sequence": INT,
}
declare("stream.scheduled", Obj(**_STREAM))
declare("stream.updated", Obj(**_STREAM, changed=ListOf(STR)))
# A scheduled drop cancelled by its creator or staff (stream_cancel).
declare(
    "stream.cancelled",
    Obj(**{**_STREAM, "status": OneOf(Stream.Status.CANCELLED)}, cancelled_at=DATETIME),
)
# A stream deleted by its creator or staff (with its pins, deals and annotations).
declare("stream.deleted", Obj(stream=INT, shop=INT))

# A deal as the control room lists it, whatever its status (``selectors.deal_row``).
_DEAL_ROW = {
    "stream": INT,
    "id": INT,
    "sku": STR,
    "sku_id": INT,
    "location": Nullable(INT),
    "price": DECIMAL,
    "quantity": INT,
    "per_buyer_limit": Nullable(INT),
    "status": STR,
    "opens_at": DATETIME,
    "closes_at": DATETIME,
}
declare("deal.scheduled", Obj(**_DEAL_ROW))
declare("deal.cancelled", Obj(**_DEAL_ROW))
declare("deal.deleted", Obj(stream=INT, id=INT, sku=STR, sku_id=INT))

# A stream's notes (annotations); ``changed`` with annotation.updated only.
_NOTE = {"stream": INT, "id": INT, "offset_seconds": INT, "text": STR, "sku": Nullable(STR)}
declare("annotation.created", Obj(**_NOTE))
declare("annotation.updated", Obj(**_NOTE, changed=ListOf(STR)))
declare("annotation.deleted", Obj(stream=INT, id=INT))
