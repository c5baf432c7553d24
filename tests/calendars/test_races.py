"""Races the review found (2026-12-05): a drop moved just before its reminder was due
(the spine handler has not run yet), and viewers saving preferences at once whose
reminders share drops (PostgreSQL locks)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.calendars.models import Reminder
from apps.calendars.services import _recompute, preferences_parse, preferences_set, reminder_set, reminders_dispatch
from apps.streams.models import Stream
from apps.streams.services import stream_create
from tests.factories import CreatorFactory, UserFactory
from tests.helpers import run_concurrently

pytestmark = pytest.mark.django_db


def _prefs(user, lead=15):
    preferences_set(
        user=user,
        prefs=preferences_parse(time_zone="UTC", quiet_hours=None, windows=[], channels=["inapp"], lead_minutes=lead),
    )


def test_a_drop_moved_before_its_handler_ran_is_recomputed_not_sent_for_the_old_time():
    viewer, creator = UserFactory(), CreatorFactory()
    _prefs(viewer)
    drop = stream_create(shop=creator.shop, title="Soon", starts_at=timezone.now() + timedelta(minutes=10))
    reminder, _ = reminder_set(user=viewer, stream=drop)
    assert reminder.status == "scheduled" and reminder.deliver_at <= timezone.now()  # due: lead 15 > 10
    later = timezone.now() + timedelta(days=1)
    Stream.objects.filter(pk=drop.pk).update(starts_at=later)  # moved; stream.updated not handled yet
    reminders_dispatch()
    reminder.refresh_from_db()
    assert (reminder.status, reminder.starts_at, reminder.deliver_at) == (
        "scheduled",
        later,
        later - timedelta(minutes=15),
    )


@pytest.mark.postgres
def test_a_recompute_locks_the_reminders_rows_only():
    viewer, creator = UserFactory(), CreatorFactory()
    drop = stream_create(shop=creator.shop, title="x", starts_at=timezone.now() + timedelta(days=1))
    reminder_set(user=viewer, stream=drop)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        _recompute(Reminder.objects.filter(user_id=viewer.pk), now=timezone.now())
    locking = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]
    assert locking and all('FOR UPDATE OF "calendars_reminder"' in sql for sql in locking), locking


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_viewers_saving_preferences_at_once_never_deadlock():
    """Eight viewers, each reminded of the same 20 drops (in shuffled order), save their
    preferences at once, five rounds: every save goes through."""
    creator = CreatorFactory()
    start = timezone.now() + timedelta(days=2)
    drops = [stream_create(shop=creator.shop, title=f"d{i}", starts_at=start + timedelta(hours=i)) for i in range(20)]
    viewers = [UserFactory() for _ in range(8)]
    rng = random.Random(1)
    rows = [
        Reminder(
            user=viewer,
            stream=drop,
            channels=["inapp"],
            starts_at=drop.starts_at,
            deliver_at=drop.starts_at - timedelta(minutes=15),
            status=Reminder.Status.SCHEDULED,
            created_at=timezone.now(),
        )
        for viewer in viewers
        for drop in rng.sample(drops, len(drops))
    ]
    rng.shuffle(rows)
    Reminder.objects.bulk_create(rows)
    errors = []

    def save(user, lead):
        try:
            _prefs(user, lead)
        except OperationalError as exc:
            errors.append(str(exc).splitlines()[0])

    for round_ in range(5):
        run_concurrently(save, [(viewer, 16 + round_) for viewer in viewers], workers=8)
    assert errors == []
    assert set(Reminder.objects.values_list("deliver_at", flat=True)) == {
        drop.starts_at - timedelta(minutes=20) for drop in drops
    }
