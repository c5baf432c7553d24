"""A cloud with edges in the states a staff member on call meets (docs/edge.md,
"Reconciliation"), built through the real registration and ingest (``node_register``,
``batch_ingest`` with batches signed by each edge's key), on the demo shop (``seed_demo``'s, or
only its accounts and catalog steps when it has not run):

- ``venue-berlin``: in sync (every event held, every day matches);
- ``venue-hamburg``: a lost batch (a gap) and a backlog behind it (lag);
- ``venue-munich``: no lag, but an order the cloud could not apply (an unknown SKU), a day
  whose reported totals differ from the cloud's, and an order accepted offline and not
  captured yet;
- ``venue-spare``: registered, never synced, at a venue a creator named with markup.

``build()`` returns what a test needs to check the pages; run it once per database, e.g.
``manage.py shell -c "from tests.nodes.recon_state import build; build()"``.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta
from decimal import Decimal

SHOP = "demo-studio"
BERLIN_VENUE = "Pop-up at the Kulturbrauerei"
HAMBURG_VENUE = "Pop-up Hamburg Schanze"
MUNICH_VENUE = "Pop-up München Werksviertel"
SPARE_VENUE = '<script>alert("venue")</script> Hall'
STAFF_TIME_ZONE = "America/New_York"
PRICES = {
    "TEE-M": Decimal("29.00"),
    "POSTER": Decimal("45.00"),
    "STICKERS": Decimal("6.50"),
    "TEE-XL": Decimal("29.00"),
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Edge:
    """One edge as the cloud sees it: its key, its own orders and outbox (``ledger``), and
    the signed batches its relay would send."""

    def __init__(self, node_id: str, venue: str):
        from joserfc.jwk import OKPKey

        from apps.nodes.services import node_register

        self.node_id, self.venue = node_id, venue
        self.key = OKPKey.generate_key("Ed25519", parameters={"kid": f"{node_id}-key"})
        self.node, _ = node_register(
            node_id=node_id, public_jwk=self.key.as_dict(private=False), shop_slug=SHOP, venue_name=venue
        )
        self.events: list[dict] = []  # the edge's outbox, in seq order
        self.orders: dict[int, tuple[int, dict]] = {}  # the edge's orders: (the seq that made it, document)

    def order(self, when, lines, *, status="paid", event_type="order.placed", edge_order=None) -> dict:
        edge_order = edge_order or len(self.orders) + 1
        total = sum(PRICES[sku] * qty for sku, qty in lines)
        doc = {
            "id": edge_order, "shop": SHOP, "buyer": f"walk-in-{self.node_id}-{edge_order}@venue.example",
            "status": status, "payment_status": "captured" if status == "paid" else "pending",
            "total": format(total, "f"), "currency": "USD", "created_at": when.isoformat(),
            "paid_at": when.isoformat() if status == "paid" else None, "refunded_at": None,
            "fulfilment": "pickup", "pickup_location": self.venue, "shipping_fee": "0.00",
            "shipping_adjustments": [], "shipping": {}, "payment_reference": f"auth_{edge_order}",
            "capture_reference": "", "refund_reference": "", "receipt": "",
            "lines": [{"sku": sku, "title": sku, "quantity": qty, "unit_price": format(PRICES[sku], "f"),
                       "adjustments": [], "total": format(PRICES[sku] * qty, "f"), "location": self.venue}
                      for sku, qty in lines],
        }  # fmt: skip
        self.orders[edge_order] = (len(self.events) + 1, doc)
        return self._event(event_type, {"order": edge_order}, {"order": doc}, when)

    def stock(self, when, sku: str, available: int) -> dict:
        payload = {"sku": sku, "sku_id": 1, "shop": 1, "level": 1, "available": available, "version": len(self.events)}
        refs = {"stock": {"shop": SHOP, "sku": sku, "location": self.venue, "kind": "venue"}}
        return self._event("stock.changed", payload, refs, when)

    def _event(self, event_type, payload, refs, when) -> dict:
        seq = len(self.events) + 1
        event = {
            "seq": seq, "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.node_id}/{seq}")), "type": event_type,
            "payload": payload, "created_at": when.isoformat(), "refs": json.loads(json.dumps(refs)),
        }  # fmt: skip
        self.events.append(event)
        return event

    def totals(self, days_of: list[dict], as_of: int) -> dict:
        """The edge's running totals over its paid orders when its outbox ended at ``as_of``
        (what its relay reports with a batch), the days the batch's events touch, its head."""
        by_day: dict[str, dict] = {}
        overall: dict[str, dict] = {}
        for seq, doc in self.orders.values():
            if seq > as_of or doc["status"] != "paid":
                continue
            units = sum(line["quantity"] for line in doc["lines"])
            day = doc["created_at"][:10]
            for bucket in (overall, by_day.setdefault(day, {})):
                entry = bucket.setdefault(doc["currency"], {"orders": 0, "units": 0, "amount": Decimal(0)})
                entry["orders"] += 1
                entry["units"] += units
                entry["amount"] += Decimal(doc["total"])

        def out(bucket):
            return {c: {**e, "amount": format(e["amount"], "f")} for c, e in bucket.items()}

        touched = {e["refs"]["order"]["created_at"][:10] for e in days_of if "order" in e["refs"]}
        head = self.events[as_of - 1]
        return {
            **out(overall),
            "days": {day: out(by_day.get(day, {})) for day in sorted(touched)},
            "head": {"seq": head["seq"], "at": head["created_at"]},
        }

    def send(self, events: list[dict], *, as_of: int | None = None, totals: dict | None = None) -> dict:
        """Sign and ingest one batch, as the cloud's ``/sync/v1/batches`` would, sent when
        the edge's outbox ended at ``as_of`` (default: the batch's last event)."""
        from apps.nodes.services import batch_ingest

        body = {
            "node": self.node_id,
            "from_seq": events[0]["seq"],
            "to_seq": events[-1]["seq"],
            "events": events,
            "totals": totals if totals is not None else self.totals(events, as_of or events[-1]["seq"]),
        }
        header = _b64(json.dumps({"alg": "EdDSA", "kid": self.key.kid, "typ": "sync-batch+jws"}).encode())
        payload = _b64(json.dumps(body).encode())
        signature = self.key.get_op_key("sign").sign(f"{header}.{payload}".encode())
        return batch_ingest(token=f"{header}.{payload}.{_b64(signature)}")


def build() -> dict:
    """All or nothing (one transaction), once per database."""
    from django.db import transaction

    with transaction.atomic():
        return _build()


def _build() -> dict:
    from zoneinfo import ZoneInfo

    from django.utils import formats, timezone
    from django.utils.dateparse import parse_datetime

    from apps.accounts.models import Shop, User
    from apps.accounts.services import user_set_time_zone
    from apps.catalog.models import Location
    from apps.catalog.services import location_ensure
    from apps.nodes.models import Node
    from apps.nodes.reconciliation import days_compared
    from creatorcommerce.demo import DEMO_PASSWORD, DEMO_USERS

    if not Shop.objects.filter(slug=SHOP).exists():
        # Without seed_demo (the browser test, to stay fast): only its accounts and catalog
        # steps, the demo users and the demo shop with its SKUs.
        from apps.accounts import demo as accounts_demo
        from apps.catalog import demo as catalog_demo

        catalog_demo.seed(accounts_demo.seed({}))
    shop = Shop.objects.get(slug=SHOP)
    for name in (BERLIN_VENUE, HAMBURG_VENUE, MUNICH_VENUE, SPARE_VENUE):
        if not Location.objects.filter(shop=shop, name=name).exists():  # seed_demo's keeps its address
            location_ensure(shop=shop, name=name, kind=Location.Kind.VENUE)
    staff = User.objects.get(email=DEMO_USERS["staff"][0])
    user_set_time_zone(user=staff, time_zone=STAFF_TIME_ZONE)
    if Node.objects.filter(node_id="venue-berlin").exists():
        raise SystemExit("the reconciliation state is built already")

    now = timezone.now().replace(microsecond=0)
    hours = lambda h: now - timedelta(hours=h)  # noqa: E731

    # In sync: three days of sales, all held, every day reported and matching.
    berlin = Edge("venue-berlin", BERLIN_VENUE)
    first = [
        berlin.order(hours(50), [("TEE-M", 1), ("STICKERS", 2)]),
        berlin.stock(hours(50), "TEE-M", 5),
        berlin.order(hours(26), [("POSTER", 1)]),
        berlin.order(hours(25), [("TEE-M", 2)]),
    ]
    berlin.send(first)
    berlin.send([berlin.order(hours(2), [("STICKERS", 3)]), berlin.stock(hours(2), "TEE-M", 3)])

    # A gap and lag: 1-5 held; the batch with 6-8 was lost, 9-12 arrived; the edge says it
    # has 18 (its uplink is flaky: 13-18 are still queued).
    hamburg = Edge("venue-hamburg", HAMBURG_VENUE)
    for h in (6, 5, 4.5, 4, 3):
        hamburg.order(hours(h), [("TEE-M", 1)])
    for minutes in (90, 80, 70, 60, 50, 45, 40, 35, 30, 20, 15, 10, 4):
        hamburg.order(now - timedelta(minutes=minutes), [("STICKERS", 1)])
    hamburg.send(hamburg.events[0:5])
    hamburg.send(hamburg.events[8:12], as_of=18)

    # A mismatch without lag: an order the cloud could not apply (TEE-XL is not in its
    # catalog), a day the edge reports more on than the cloud holds, and an order accepted
    # offline whose capture has not been heard of.
    munich = Edge("venue-munich", MUNICH_VENUE)
    munich.order(hours(49), [("POSTER", 1)])
    munich.order(hours(48), [("TEE-M", 1)])
    munich.order(hours(25), [("TEE-M", 1)])
    munich.order(hours(24.5), [("TEE-XL", 1)])  # unresolved in the cloud
    munich.order(hours(24), [("STICKERS", 2)])
    munich.order(hours(1), [("POSTER", 1), ("STICKERS", 1)], status="accepted_offline",
                 event_type="order.accepted_offline")  # fmt: skip
    totals = munich.totals(munich.events, len(munich.events))
    oldest_day = munich.events[0]["created_at"][:10]
    # The edge counts an order on its oldest day that the cloud never received an event for.
    reported = totals["days"][oldest_day]["USD"]
    reported.update(orders=reported["orders"] + 1, units=reported["units"] + 1,
                    amount=format(Decimal(reported["amount"]) + PRICES["TEE-M"], "f"))  # fmt: skip
    totals["USD"].update(orders=totals["USD"]["orders"] + 1, units=totals["USD"]["units"] + 1,
                         amount=format(Decimal(totals["USD"]["amount"]) + PRICES["TEE-M"], "f"))  # fmt: skip
    munich.send(munich.events, totals=totals)

    spare = Edge("venue-spare", SPARE_VENUE)

    def shown(when: str, zone: str) -> str:
        """An edge time as the admin shows it (DATETIME_FORMAT) in ``zone``."""
        return formats.date_format(timezone.localtime(parse_datetime(when), ZoneInfo(zone)), "DATETIME_FORMAT")

    hamburg_acked_at = hamburg.events[4]["created_at"]  # seq 5, the newest acknowledged
    return {
        "nodes": {e.node_id: e.node.pk for e in (berlin, hamburg, munich, spare)},
        "munich_days": {
            "unresolved": munich.events[3]["created_at"][:10],
            "reported_more": oldest_day,
        },
        # One day, unless midnight (UTC) fell among its last hour's orders.
        "hamburg_days_differ": sum(not day["match"] for day in days_compared(hamburg.node)),
        "hamburg_acked_at": {"staff": shown(hamburg_acked_at, STAFF_TIME_ZONE), "utc": shown(hamburg_acked_at, "UTC")},
        "staff": staff.email,
        "staff_time_zone": STAFF_TIME_ZONE,
        "creator": DEMO_USERS["creator"][0],
        "password": DEMO_PASSWORD,
    }
