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
