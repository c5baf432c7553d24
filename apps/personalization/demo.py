"""The personalisation app's demo step (docs/personalization.md, "Demo").

``history`` (an ``AFTER_COMMIT`` step, after the loyalty app's past orders: ``order_place``
commits by itself): six regulars' past orders in the demo shop that buy things together —
the signed poster with stickers, the large tee with the poster, the small tee with stickers —
each a real buy through ``order_place``, dated back as the loyalty history is; then the
shop's model is trained once, from these and every other sold order of the shop, so the
demo drop's pins have something to be ranked by. Running it twice buys nothing again (the
model is retrained, from the same orders).
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.accounts.demo import demo_user
from apps.orders.demo import past_order
from apps.orders.models import Address, Order, PaymentMethod
from apps.orders.services import address_set, payment_method_add

from .ranker import rank_pins
from .services import model_train

# (buyer, days ago, [(SKU, quantity)]), oldest first. At most one order with the poster per
# buyer (its per-buyer limit), never TEE-M (the pop-up's bundle tee keeps its stock), and at
# most two orders each (a third would earn the loyalty demo's "Insider").
DEMO_CO_PURCHASES = [
    ("regular1@demo.local", 20, [("POSTER", 1), ("STICKERS", 2)]),
    ("regular2@demo.local", 15, [("POSTER", 1), ("STICKERS", 1)]),
    ("regular3@demo.local", 10, [("POSTER", 1), ("STICKERS", 1)]),
    ("regular4@demo.local", 8, [("TEE-L", 1), ("POSTER", 1)]),
    ("regular5@demo.local", 6, [("TEE-L", 1), ("POSTER", 1)]),
    ("regular3@demo.local", 3, [("TEE-L", 1)]),
    ("regular6@demo.local", 2, [("TEE-S", 1), ("STICKERS", 3)]),
]
DEMO_PINS = ["TEE-S", "TEE-M", "TEE-L", "POSTER", "STICKERS"]  # the demo drop's, in the creator's order
# A demo login whose history the model ranks by (their one past order: the signed poster).
DEMO_RANKED_VIEWER = "fan2@demo.local"


def co_purchase_key(email: str, days_ago: int) -> str:
    """The Idempotency-Key of a regular's past order: a re-seed finds it instead of buying again."""
    return f"demo-copurchase-{email}-{days_ago}"


def _ready_to_buy(user, name: str) -> None:
    if not PaymentMethod.objects.filter(user=user).exists():
        payment_method_add(user=user, token="tok_ok")
    if not Address.objects.filter(user=user).exists():
        address_set(user=user, name=name, line1="7 Demo Street", city="Berlin", postal_code="10115", country="DE")


def history(context: dict) -> dict:
    """The regulars' orders (``DEMO_CO_PURCHASES``), each once, then the model trained.
    Runs with no transaction open (``creatorcommerce.demo.AFTER_COMMIT``)."""
    shop = context["users"]["creator"].shop
    now = timezone.now()
    placed = 0
    for email, days_ago, lines in DEMO_CO_PURCHASES:
        key = co_purchase_key(email, days_ago)
        name = f"Demo Regular {email.split('@')[0].removeprefix('regular')}"
        buyer = demo_user(email, name)
        if Order.objects.filter(buyer=buyer, idempotency_key=key).exists():
            continue
        _ready_to_buy(buyer, name)
        at = (now - timedelta(days=days_ago)).replace(hour=19, minute=15, second=0, microsecond=0)
        past_order(buyer=buyer, shop=shop, lines=lines, key=key, at=at)
        placed += 1

    model = model_train(shop=shop)
    viewer = demo_user(DEMO_RANKED_VIEWER, "")
    ranked = rank_pins(shop.pk, viewer.pk, DEMO_PINS)
    return {
        "personalization_model": model,
        "summary": [
            f"co-purchase model v{model.version}: {model.items} items, {model.pairs} neighbours from "
            f"{model.orders} orders ({placed} of {len(DEMO_CO_PURCHASES)} regulars' orders placed now); "
            f"{DEMO_RANKED_VIEWER}'s pins ranked {', '.join(ranked)}"
        ],
    }
