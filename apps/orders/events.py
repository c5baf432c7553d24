"""The orders' events and their payloads (docs/events.md; creatorcommerce/spine/event_schema.py)."""

from creatorcommerce.spine.event_schema import BOOL, DECIMAL, INT, STR, ListOf, Nullable, Obj, declare

from .models import Order

# A paid buy. ``buyer_name`` is only the display name the buyer chose to show, or null;
# each line's ``adjustments`` say which offers changed its list price, and by how much.
PLACED = Obj(
    order=INT,
    shop=INT,
    stream=Nullable(INT),
    buyer=INT,
    buyer_name=Nullable(STR),
    subtotal=DECIMAL,
    total=DECIMAL,
    currency=STR,
    lines=ListOf(
        Obj(
            sku=STR,
            sku_id=INT,
            quantity=INT,
            unit_price=DECIMAL,
            adjustments=ListOf(Obj(source=STR, id=INT, label=STR, amount=DECIMAL)),
            total=DECIMAL,
        )
    ),
)
declare("order.placed", PLACED)
# Accepted by an edge node with the gateway unreachable (docs/buying.md, "Offline selling"):
# sold and receipted, payment pending; ``order.placed`` follows when it is paid.
declare("order.accepted_offline", PLACED)
# Its later payment was refused: flagged for the creator, the units stay sold.
declare("order.captured", Obj(order=INT, shop=INT))
declare("order.capture_declined", Obj(order=INT, shop=INT, buyer=INT, total=DECIMAL, currency=STR, reason=STR))
# A reservation closed without payment; its units went back (``stock.changed``/``deal.changed``).
for status in (Order.Status.DECLINED, Order.Status.EXPIRED, Order.Status.FAILED):
    declare(f"order.{status}", Obj(order=INT, shop=INT))
declare(
    "order.refunded",
    Obj(
        order=INT,
        shop=INT,
        total=DECIMAL,
        currency=STR,
        restocked=BOOL,
        lines=ListOf(Obj(sku=STR, sku_id=INT, quantity=INT)),
    ),
)
declare("payment_method.added", Obj(user=INT, payment_method=INT))
declare("address.updated", Obj(user=INT))
