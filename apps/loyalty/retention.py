"""Retention of a shop's buyers (docs/loyalty.md, "Retention"): the first-time -> repeat
funnel by cohort, and how badge holders repeat compared with the other buyers.

Definitions (the admin page says them too):
- a *purchase* is an order of the shop that is paid now (status ``paid``; a refunded order
  does not count);
- a buyer's *cohort* is the week (Monday to Sunday, in the shop owner's time zone) of their
  first purchase in the shop;
- a *repeat buyer* has made two purchases or more in the shop, at any time up to now;
- a *badge holder* holds a granted award of one of the shop's badges (pending and revoked
  ones do not count).

Reads only; one query for the buyers, one for the holders.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Count, Min
from django.utils import timezone

from apps.orders.models import Order

from .models import Award

DEFAULT_WEEKS = 12


@dataclass(frozen=True)
class Group:
    """Buyers, and how many of them repeat."""

    buyers: int
    repeat: int

    @property
    def rate(self) -> float | None:
        """Percent of ``buyers`` who repeat, to one decimal; None without buyers."""
        return None if self.buyers == 0 else round(100 * self.repeat / self.buyers, 1)


@dataclass(frozen=True)
class Cohort(Group):
    week: date = field(default=date.min)  # the Monday the week starts on, in the shop's zone


@dataclass(frozen=True)
class Retention:
    shop_id: int
    time_zone: str
    cohorts: list[Cohort]  # oldest week first, every week of the window (empty ones too)
    before: Group  # buyers whose first purchase is older than the window
    holders: Group  # all buyers holding a granted badge of the shop
    others: Group  # all other buyers


def _zone(shop) -> zoneinfo.ZoneInfo:
    name = getattr(shop.owner, "time_zone", "") or "UTC"
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _monday(moment: datetime, zone) -> date:
    day = timezone.localtime(moment, zone).date()
    return day - timedelta(days=day.weekday())


def retention_of(*, shop, weeks: int = DEFAULT_WEEKS, now: datetime | None = None) -> Retention:
    """``shop``'s retention: cohorts of the last ``weeks`` weeks up to ``now`` (this week
    included), and badge holders against the other buyers (over all buyers)."""
    zone = _zone(shop)
    now = now or timezone.now()
    last = _monday(now, zone)
    weeks_shown = [last - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]

    per_buyer = (
        Order.objects.filter(shop=shop, status=Order.Status.PAID, paid_at__isnull=False, paid_at__lte=now)
        .values("buyer")
        .annotate(first=Min("paid_at"), orders=Count("id"))
    )
    holders_ids = set(
        Award.objects.filter(badge__shop=shop, status=Award.Status.GRANTED).values_list("user_id", flat=True)
    )
    counts = {week: [0, 0] for week in weeks_shown}
    before = [0, 0]
    groups = {True: [0, 0], False: [0, 0]}
    for row in per_buyer:
        repeat = int(row["orders"] >= 2)
        week = _monday(row["first"], zone)
        bucket = counts.get(week, before if week < weeks_shown[0] else None)
        if bucket is not None:
            bucket[0] += 1
            bucket[1] += repeat
        holder = groups[row["buyer"] in holders_ids]
        holder[0] += 1
        holder[1] += repeat
    return Retention(
        shop_id=shop.pk,
        time_zone=str(zone),
        cohorts=[Cohort(buyers=b, repeat=r, week=week) for week, (b, r) in counts.items()],
        before=Group(*before),
        holders=Group(*groups[True]),
        others=Group(*groups[False]),
    )


# -- the chart (server-rendered SVG, no script) ----------------------------------------------

CHART_WIDTH, CHART_HEIGHT = 720, 260
_MARGIN_LEFT, _MARGIN_BOTTOM, _MARGIN_TOP = 40, 40, 16


def retention_chart(retention: Retention) -> dict:
    """The geometry of the cohort chart, for templates/loyalty/admin/retention.html: per
    week a bar of first-time buyers and, inside it, the bar of those who came back."""
    plot_h = CHART_HEIGHT - _MARGIN_BOTTOM - _MARGIN_TOP
    plot_w = CHART_WIDTH - _MARGIN_LEFT - 10
    peak = max([c.buyers for c in retention.cohorts] + [1])
    slot = plot_w / max(len(retention.cohorts), 1)
    bar_w = max(slot * 0.7, 2)
    bars = []
    for i, cohort in enumerate(retention.cohorts):
        x = _MARGIN_LEFT + i * slot + (slot - bar_w) / 2
        h_all = plot_h * cohort.buyers / peak
        h_rep = plot_h * cohort.repeat / peak
        base = _MARGIN_TOP + plot_h
        bars.append(
            {
                "x": round(x, 1),
                "width": round(bar_w, 1),
                "label_x": round(x + bar_w / 2, 1),
                "all_y": round(base - h_all, 1),
                "all_h": round(h_all, 1),
                "rep_y": round(base - h_rep, 1),
                "rep_h": round(h_rep, 1),
                "cohort": cohort,
                "title": f"Week of {cohort.week:%d %b %Y}: {cohort.buyers} first-time buyers, "
                f"{cohort.repeat} came back" + (f" ({cohort.rate} %)" if cohort.rate is not None else ""),
            }
        )
    ticks = sorted({0, peak // 2, peak})
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "axis_x": _MARGIN_LEFT,
        "axis_y": _MARGIN_TOP + plot_h,
        "axis_end": CHART_WIDTH - 10,
        "label_y": _MARGIN_TOP + plot_h + 16,
        "bars": bars,
        "ticks": [{"value": t, "y": round(_MARGIN_TOP + plot_h - plot_h * t / peak, 1)} for t in ticks],
    }


def holders_chart(retention: Retention) -> dict:
    """Two horizontal bars: the repeat rate of badge holders and of the other buyers."""
    rows = []
    for i, (label, group) in enumerate((("Badge holders", retention.holders), ("Other buyers", retention.others))):
        rate = group.rate or 0
        rows.append(
            {
                "label": label,
                "group": group,
                "y": 10 + i * 34,
                "text_y": 10 + i * 34 + 17,
                "width": round(4 * rate, 1),  # 100 % = 400 px
                "value_x": 130 + round(4 * rate, 1) + 6,
            }
        )
    return {"width": 620, "height": 80, "rows": rows}
