"""The calendars app's demo step: followers of the demo shop in several zones, each with
their own quiet hours and windows (so the audience heatmap on the drop's admin page has a
shape), an upcoming drop that some of them asked to be reminded of, and the demo viewer
opted in to calendars with a private feed. Everything through the services (idempotent)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.accounts.demo import demo_user
from apps.consents.services import consent_set
from apps.streams.models import Stream
from apps.streams.services import stream_create

from .services import follow_set, preferences_parse, preferences_set, reminder_set

DEMO_DROP_TITLE = "Sunday sample sale"
EVENINGS = [{"weekday": d, "start": "18:00", "end": "23:00"} for d in range(5)]
WEEKENDS = [{"weekday": d, "start": "10:00", "end": "22:00"} for d in (5, 6)]

# (e-mail, name, zone, quiet hours, windows, lead minutes, reminded of the demo drop)
FOLLOWERS = [
    ("ny-fan@demo.local", "Nia (New York)", "America/New_York", ("23:00", "07:00"), EVENINGS + WEEKENDS, 30, True),
    ("la-fan@demo.local", "Luis (Los Angeles)", "America/Los_Angeles", ("22:00", "08:00"), [], 60, True),
    ("sp-fan@demo.local", "Sofia (São Paulo)", "America/Sao_Paulo", ("00:00", "08:00"), EVENINGS, 15, False),
    ("london-fan@demo.local", "Liam (London)", "Europe/London", ("22:30", "07:30"), [], 15, True),
    ("berlin-fan@demo.local", "Bea (Berlin)", "Europe/Berlin", ("22:00", "07:00"), EVENINGS + WEEKENDS, 120, True),
    ("berlin-fan2@demo.local", "Ben (Berlin)", "Europe/Berlin", None, WEEKENDS, 60, False),
    ("delhi-fan@demo.local", "Dev (Delhi)", "Asia/Kolkata", ("23:00", "06:00"), [], 30, False),
    ("tokyo-fan@demo.local", "Tomo (Tokyo)", "Asia/Tokyo", ("00:00", "08:00"), EVENINGS, 15, True),
    ("sydney-fan@demo.local", "Sam (Sydney)", "Australia/Sydney", ("21:00", "07:00"), WEEKENDS, 45, False),
]


def seed(context: dict) -> dict:
    shop = context["users"]["creator"].shop
    viewer = context["users"]["viewer"]
    now = timezone.now()
    drop = Stream.objects.filter(shop=shop, title=DEMO_DROP_TITLE, status=Stream.Status.SCHEDULED).first()
    if drop is None or drop.starts_at <= now:
        start = (now + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
        drop = stream_create(
            shop=shop, title=DEMO_DROP_TITLE, starts_at=start, description="Samples and seconds, one weekend only."
        )
    for email, name, zone, quiet, windows, lead, reminded in FOLLOWERS:
        user = demo_user(email, name)
        prefs = preferences_parse(
            time_zone=zone,
            quiet_hours={"start": quiet[0], "end": quiet[1]} if quiet else None,
            windows=windows,
            channels=["inapp", "email"],
            lead_minutes=lead,
        )
        preferences_set(user=user, prefs=prefs, now=now)
        follow_set(user=user, shop=shop, now=now)
        if reminded:
            reminder_set(user=user, stream=drop, now=now)
    follow_set(user=viewer, shop=shop, now=now)
    reminder_set(user=viewer, stream=drop, now=now)
    feed_url = consent_set(user=viewer, kind="calendar", granted=True, now=now).extra["feed_url"]
    return {
        "calendar_drop": drop,
        "summary": [
            f"calendars: {len(FOLLOWERS) + 1} followers of {shop.name} in {len({f[2] for f in FOLLOWERS})} zones; "
            f"upcoming drop {drop.title!r} (/streams/{drop.pk}/); audience heatmap on its admin page",
            f"calendars: the demo viewer's private feed {feed_url}; the shop's public feed "
            f"/calendars/shops/{shop.slug}.ics",
        ],
    }
