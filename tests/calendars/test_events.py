"""The exact events the calendars' services send (docs/events.md, "Calendars")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from apps.calendars.models import Preference, Reminder
from apps.calendars.services import (
    follow_delete,
    follow_set,
    preferences_parse,
    preferences_set,
    reminder_delete,
    reminder_set,
    reminders_dispatch,
)
from tests.helpers import captured_events

pytestmark = pytest.mark.django_db


def test_preferences_updated_names_the_changed_keys_only(viewer):
    prefs = {
        "time_zone": "America/New_York",
        "quiet_hours": None,
        "windows": [],
        "channels": ["inapp"],
        "lead_minutes": 15,
    }
    with captured_events() as events:
        preferences_set(user=viewer, prefs=preferences_parse(**prefs))  # the defaults: nothing to save
        preferences_set(user=viewer, prefs=preferences_parse(**{**prefs, "lead_minutes": 20}))
    assert events == [("preferences.updated", {"user": viewer.pk, "changed": ["lead_minutes"]}, [])]
    assert Preference.objects.get(user=viewer).lead_minutes == 20


def test_follow_events(viewer, shop):
    with captured_events() as events:
        follow_set(user=viewer, shop=shop)
        follow_set(user=viewer, shop=shop)
        follow_delete(user=viewer, shop=shop)
        follow_delete(user=viewer, shop=shop)
    assert events == [
        ("shop.followed", {"user": viewer.pk, "shop": shop.pk}, []),
        ("shop.unfollowed", {"user": viewer.pk, "shop": shop.pk}, []),
    ]


def test_reminder_events(viewer, make_drop):
    drop = make_drop(starts_at=datetime(2031, 1, 6, 15, 0, tzinfo=UTC))
    with captured_events() as events:
        reminder, _ = reminder_set(user=viewer, stream=drop)
        reminder_set(user=viewer, stream=drop)
        reminder_delete(user_id=viewer.pk, stream_id=drop.pk)
        reminder_delete(user_id=viewer.pk, stream_id=drop.pk)
    ids = {"reminder": reminder.pk, "user": viewer.pk, "stream": drop.pk}
    assert events == [
        (
            "reminder.set",
            {
                **ids,
                "status": "scheduled",
                "starts_at": "2031-01-06T15:00:00Z",
                "deliver_at": "2031-01-06T14:45:00Z",
                "channels": ["inapp"],
            },
            [],
        ),
        ("reminder.removed", ids, []),
    ]


def test_reminder_sent_and_missed(viewer, make_drop):
    soon = make_drop(starts_at=timezone.now() + timedelta(minutes=5))
    reminder, _ = reminder_set(user=viewer, stream=soon)
    gone = make_drop(starts_at=timezone.now() + timedelta(minutes=5))
    missed, _ = reminder_set(user=viewer, stream=gone)
    from apps.streams.services import stream_end

    stream_end(stream=gone)
    with captured_events() as events:
        reminders_dispatch()
    assert sorted(events, key=lambda e: e[1]["reminder"]) == [
        ("reminder.sent", {"reminder": reminder.pk, "user": viewer.pk, "stream": soon.pk, "channels": ["inapp"]}, []),
        (
            "reminder.set",
            {
                "reminder": missed.pk,
                "user": viewer.pk,
                "stream": gone.pk,
                "status": "missed",
                "starts_at": Reminder.objects.get(pk=missed.pk).starts_at.isoformat().replace("+00:00", "Z"),
                "deliver_at": None,
                "channels": ["inapp"],
            },
            [],
        ),
    ]
