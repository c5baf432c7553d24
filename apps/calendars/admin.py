"""Reminders and their deliveries, for staff to look at (docs/calendars.md, "Sending"):
read-only, written only by the services. Creators see no one's reminders here (their
audience shows as counts: the heatmap)."""

from django.contrib import admin

from creatorcommerce.admin import ReadOnlyStaffAdmin

from .models import Delivery, Reminder


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyStaffAdmin):
    list_display = ("pk", "user", "stream", "status", "starts_at", "deliver_at", "sent_at")
    list_filter = ("status",)
    list_select_related = ("user", "stream")
    search_fields = ("user__email", "stream__title")
    date_hierarchy = "deliver_at"


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyStaffAdmin):
    list_display = ("pk", "user", "stream", "channel", "status", "attempts", "claimed_at", "sent_at")
    list_filter = ("channel", "status")
    list_select_related = ("user", "stream")
    search_fields = ("user__email",)


# -- the audience heatmap on a drop's admin page ------------------------------------------------

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def audience_panel(request, shop, stream):
    """A scheduling panel (``apps.streams.panels``): the shop's audience heatmap for the week
    of the drop's start (this week on the add page), in the creator's zone, with the chosen
    slot marked; ``static/js/heatmap.js`` moves the mark as the start is typed and loads the
    week typed from ``GET /api/v1/shops/{slug}/audience-availability/``
    (docs/calendars.md, "Audience heatmap")."""
    from datetime import timedelta

    from django.template.loader import render_to_string
    from django.utils import timezone

    from .selectors import audience_heatmap
    from .windows import zone

    if shop is None:
        return render_to_string("calendars/heatmap_panel.html", {"no_shop": True})
    tz_name = shop.owner.time_zone or "UTC"
    starts_local = stream.starts_at.astimezone(zone(tz_name)) if stream and stream.starts_at else None
    result = audience_heatmap(shop=shop, week_start=starts_local.date() if starts_local else None)
    top = max((c for day in result.counts for c in day), default=0)
    missing = set(result.missing)
    rows = []
    for weekday, day_counts in enumerate(result.counts):
        day = result.week_start + timedelta(days=weekday)
        cells = []
        for hour, count in enumerate(day_counts):
            chosen = bool(starts_local and starts_local.date() == day and starts_local.hour == hour)
            cells.append(
                {
                    "hour": hour,
                    "count": count,
                    "alpha": f"{(count / top if top else 0):.2f}",
                    "missing": (weekday, hour) in missing,
                    "chosen": chosen,
                }
            )
        rows.append({"weekday": weekday, "name": DAY_NAMES[weekday], "date": day, "cells": cells})
    return render_to_string(
        "calendars/heatmap_panel.html",
        {
            "shop": shop,
            "heatmap": result,
            "rows": rows,
            "hours": range(24),
            "top": top,
            "same_zone": timezone.get_current_timezone_name() == tz_name,
            "api_url": f"/api/v1/shops/{shop.slug}/audience-availability/",
        },
        request=request,
    )
