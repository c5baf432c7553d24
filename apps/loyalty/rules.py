"""The badges' rules over commerce events (docs/loyalty.md, "Badges and rules").

Each ``on_*`` function is what a spine handler (``handlers.py``) runs for one event, inside
the handler's transaction; it awards through ``awards.award_create`` only, so every award is
once per badge, viewer and scope whatever is delivered twice or at the same time. Rules look
at what the database says now, not only at the payload: an order refunded before its
``order.placed`` was (re)handled earns nothing, and refunded orders never count towards an
award (awards already made stay; staff revoke them, docs/loyalty.md).

Loyalty sits beside streams (it imports nothing of it): a drop is ``Order.stream``'s related
model, and a deal's opening time is when its ``deal.opened`` event was recorded.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Sum

from apps.orders.models import Order, OrderLine
from creatorcommerce.spine.models import OutboxEvent

from .awards import award_create
from .models import Award, Badge

PAID = Order.Status.PAID
# A drop that took place (or is taking place); scheduled ones are not part of a streak yet.
DROP_STATUSES = ("live", "ended")


def _stream_model():
    """The streams app's Stream model, reached through the order's foreign key."""
    return Order._meta.get_field("stream").related_model


def stream_scope(stream_id: int) -> str:
    return f"stream:{stream_id}"


def deal_scope(deal_id: int) -> str:
    return f"deal:{deal_id}"


def _active_badges(shop_id: int, *rules: str):
    return Badge.objects.filter(shop_id=shop_id, is_active=True, rule__in=rules).order_by("pk")


# -- order.placed ----------------------------------------------------------------------------


def on_order_placed(*, payload: dict, at, now) -> list[Award]:
    """Every rule of the order's shop for one ``order.placed``: deal speed, streak, repeat
    and spend, then the first buyers (last: it serializes on the badge, so the lock is held
    for as little as possible). ``at`` is when the event was recorded (the spend window ends
    there), ``now`` stamps the awards. Returns the awards created."""
    order = Order.objects.select_related("buyer").filter(pk=payload["order"], status=PAID).first()
    if order is None:  # refunded (or never paid) by the time this runs: earns nothing
        return []
    created: list[Award] = []
    badges = list(_active_badges(order.shop_id, *Badge.Rule.values))
    deal_ids = order_deal_ids(order)
    for badge in sorted(badges, key=lambda b: b.rule == Badge.Rule.FIRST_BUYERS):
        if badge.rule == Badge.Rule.FIRST_BUYERS:
            created += first_buyers(badge=badge, order=order, now=now)
        elif badge.rule == Badge.Rule.DEAL_SPEED:
            for deal_id in deal_ids:
                created += deal_speed(badge=badge, order=order, deal_id=deal_id, opened_at=None, now=now)
        elif badge.rule == Badge.Rule.STREAK:
            created += streak_for_order(badge=badge, order=order, now=now)
        elif badge.rule == Badge.Rule.REPEAT:
            created += repeat(badge=badge, order=order, now=now)
        elif badge.rule == Badge.Rule.SPEND:
            created += spend(badge=badge, order=order, at=at, now=now)
    return created


def _created(award_and_created) -> list[Award]:
    award, created = award_and_created
    return [award] if created else []


def first_buyers(*, badge: Badge, order: Order, now) -> list[Award]:
    """The first ``count`` distinct buyers of a drop (``badge.stream``: that drop only), one
    award each in scope ``stream:<id>``.

    Exact under concurrency: the count of the drop's awards (every status: a revoked award
    used its place) is read and the award made under a lock on the badge's row, so handlers
    running at once take turns, and the N+1st finds N. Places go in the order handlers run,
    which is the order the buys committed give or take the handlers' scheduling. Before the
    lock, a plain count turns away everyone once the N places are gone."""
    if order.stream_id is None or (badge.stream_id and badge.stream_id != order.stream_id):
        return []
    scope = stream_scope(order.stream_id)
    awards = Award.objects.filter(badge=badge, scope=scope)
    if awards.filter(user_id=order.buyer_id).exists() or awards.count() >= badge.count:
        return []
    Badge.objects.select_for_update().filter(pk=badge.pk).values_list("pk", flat=True).first()
    if awards.count() >= badge.count:  # read after the lock: sees every award made before it
        return []
    return _created(award_create(badge=badge, user=order.buyer, scope=scope, stream_id=order.stream_id, now=now))


def order_deal_ids(order: Order) -> list[int]:
    """The flash deals an order bought at: its lines' ``deal`` adjustments (the price) and
    units taken from a deal (``unit_source`` ``deal:<id>``)."""
    ids: set[int] = set()
    for adjustments, source in OrderLine.objects.filter(order=order).values_list("adjustments", "unit_source"):
        ids.update(int(a["id"]) for a in adjustments or [] if a.get("source") == "deal")
        if source.startswith("deal:"):
            ids.add(int(source.split(":", 1)[1]))
    return sorted(ids)


def deal_opened_at(deal_id: int):
    """When a deal opened: its first ``deal.opened`` event's time, or None if none is known."""
    return (
        OutboxEvent.objects.filter(type="deal.opened", payload__deal_id=deal_id)
        .order_by("pk")
        .values_list("created_at", flat=True)
        .first()
    )


def deal_speed(*, badge: Badge, order: Order, deal_id: int, opened_at, now) -> list[Award]:
    """Bought at a deal within ``seconds`` of it opening (by the order's ``paid_at``); scope
    ``deal:<id>``. ``badge.stream`` limits it to that drop's deals."""
    if badge.stream_id and badge.stream_id != order.stream_id:
        return []
    opened_at = opened_at or deal_opened_at(deal_id)
    if opened_at is None or order.paid_at is None:
        return []
    if order.paid_at - opened_at > timedelta(seconds=badge.seconds):
        return []
    return _created(
        award_create(badge=badge, user=order.buyer, scope=deal_scope(deal_id), stream_id=order.stream_id, now=now)
    )


def streak_window(*, stream_id: int, count: int) -> list[int]:
    """The drop ``stream_id`` and the ``count - 1`` drops of its shop before it (by start;
    drops that took place), newest first; shorter when the shop has had fewer."""
    Stream = _stream_model()
    target = Stream.objects.filter(pk=stream_id).values("shop_id", "starts_at").first()
    if target is None:
        return []
    before = (
        Stream.objects.filter(shop_id=target["shop_id"], status__in=DROP_STATUSES)
        .filter(Q(starts_at__lt=target["starts_at"]) | Q(starts_at=target["starts_at"], pk__lt=stream_id))
        .order_by("-starts_at", "-pk")
        .values_list("pk", flat=True)[: count - 1]
    )
    return [stream_id, *before]


def streak_for_order(*, badge: Badge, order: Order, now) -> list[Award]:
    """A buy in a drop completes a streak when the buyer also has a paid order in each of
    the ``count - 1`` drops before it. Scope "" (once)."""
    if order.stream_id is None:
        return []
    window = streak_window(stream_id=order.stream_id, count=badge.count)
    if len(window) < badge.count:
        return []
    bought_in = (
        Order.objects.filter(buyer_id=order.buyer_id, status=PAID, stream_id__in=window)
        .values("stream_id")
        .distinct()
        .count()
    )
    if bought_in < badge.count:
        return []
    return _created(award_create(badge=badge, user=order.buyer, scope="", stream_id=order.stream_id, now=now))


def repeat(*, badge: Badge, order: Order, now) -> list[Award]:
    """``count`` paid orders in the shop (refunded ones do not count). Scope ""."""
    paid = Order.objects.filter(buyer_id=order.buyer_id, shop_id=order.shop_id, status=PAID).count()
    if paid < badge.count:
        return []
    return _created(award_create(badge=badge, user=order.buyer, scope="", stream_id=order.stream_id, now=now))


def spend(*, badge: Badge, order: Order, at, now) -> list[Award]:
    """More than ``amount`` in paid orders of the shop (refunded ones are not counted)
    over the ``period_days`` up to ``at``. Scope ""."""
    since = at - timedelta(days=badge.period_days)
    total = Order.objects.filter(
        buyer_id=order.buyer_id, shop_id=order.shop_id, status=PAID, paid_at__gt=since, paid_at__lte=at
    ).aggregate(total=Sum("total"))["total"]
    if total is None or total <= badge.amount:
        return []
    return _created(award_create(badge=badge, user=order.buyer, scope="", stream_id=order.stream_id, now=now))


# -- deal.opened -----------------------------------------------------------------------------


def on_deal_opened(*, payload: dict, at, now) -> list[Award]:
    """Orders bought at the deal whose ``order.placed`` was handled before the deal's
    opening was recorded here (e.g. events synced from another node): the deal-speed rule
    with the opening time ``at``. Usually finds no order (the deal has just opened)."""
    deal_id = payload["deal_id"]
    Stream = _stream_model()
    shop_id = Stream.objects.filter(pk=payload["stream"]).values_list("shop_id", flat=True).first()
    if shop_id is None:
        return []
    badges = list(_active_badges(shop_id, Badge.Rule.DEAL_SPEED))
    if not badges:
        return []
    # Only orders paid within the longest window can earn anything (and none is paid at a
    # deal before it opened).
    longest = max(badge.seconds for badge in badges)
    orders = Order.objects.select_related("buyer").filter(
        stream_id=payload["stream"], status=PAID, paid_at__gte=at, paid_at__lte=at + timedelta(seconds=longest)
    )
    created: list[Award] = []
    for order in orders.order_by("paid_at", "pk"):
        if deal_id not in order_deal_ids(order):
            continue
        for badge in badges:
            created += deal_speed(badge=badge, order=order, deal_id=deal_id, opened_at=at, now=now)
    return created


# -- stream.ended ----------------------------------------------------------------------------


def on_stream_ended(*, payload: dict, now) -> list[Award]:
    """A drop ended: everyone with a paid order in each of the shop's last ``count`` drops
    (this one and those before it) completes the streak."""
    created: list[Award] = []
    for badge in _active_badges(payload["shop"], Badge.Rule.STREAK):
        window = streak_window(stream_id=payload["stream"], count=badge.count)
        if len(window) < badge.count:
            continue
        buyer_ids = list(
            Order.objects.filter(status=PAID, stream_id__in=window)
            .values("buyer_id")
            .annotate(drops=Count("stream_id", distinct=True))
            .filter(drops=badge.count)
            .values_list("buyer_id", flat=True)
        )
        for user in get_user_model().objects.filter(pk__in=buyer_ids).order_by("pk"):
            created += _created(award_create(badge=badge, user=user, scope="", stream_id=payload["stream"], now=now))
    return created
