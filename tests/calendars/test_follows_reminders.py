"""Follows and reminders through the API (docs/calendars.md), and reminders following their
drop: moved (``stream.updated``), cancelled (``stream.cancelled``), deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from apps.calendars.models import Follow, Reminder
from apps.calendars.services import preferences_parse, preferences_set, reminder_set
from apps.streams.services import stream_cancel, stream_delete, stream_end, stream_start, stream_update
from creatorcommerce.spine.tasks import apply_handler
from tests.factories import UserFactory
from tests.helpers import captured_events, events_since, last_event_id

pytestmark = pytest.mark.django_db

ON_UPDATED = "apps.calendars.handlers.reminders_on_stream_updated"
ON_CANCELLED = "apps.calendars.handlers.reminders_on_stream_cancelled"


def _prefs(user, **overrides):
    values = {
        "time_zone": "America/New_York",
        "quiet_hours": {"start": "22:00", "end": "08:00"},
        "windows": [],
        "channels": ["inapp", "email"],
        "lead_minutes": 60,
    } | overrides
    return preferences_set(user=user, prefs=preferences_parse(**values))


# -- follows ------------------------------------------------------------------------------


def test_follow_and_unfollow_are_idempotent(as_viewer, viewer, shop):
    with captured_events() as events:
        first = as_viewer.post(f"/api/v1/shops/{shop.slug}/follow/")
        again = as_viewer.post(f"/api/v1/shops/{shop.slug}/follow/")
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["shop"] == shop.slug and first.json() == again.json()
    assert events == [("shop.followed", {"user": viewer.pk, "shop": shop.pk}, [])]
    assert as_viewer.get("/api/v1/me/follows/").json() == [first.json()]
    with captured_events() as events:
        assert as_viewer.delete(f"/api/v1/shops/{shop.slug}/follow/").status_code == 204
        assert as_viewer.delete(f"/api/v1/shops/{shop.slug}/follow/").status_code == 204
    assert events == [("shop.unfollowed", {"user": viewer.pk, "shop": shop.pk}, [])]
    assert not Follow.objects.exists()


def test_follow_an_unknown_shop_is_a_404(as_viewer):
    for method in (as_viewer.post, as_viewer.delete):
        response = method("/api/v1/shops/no-such-shop/follow/")
        assert response.status_code == 404 and response.json()["code"] == "shop_not_found"


def test_follow_needs_a_session(api_client, shop):
    assert api_client.post(f"/api/v1/shops/{shop.slug}/follow/").status_code == 401


# -- reminders ----------------------------------------------------------------------------


def test_set_a_reminder_list_it_and_remove_it(as_viewer, viewer, make_drop):
    drop = make_drop(starts_at=datetime(2030, 3, 10, 13, 0, tzinfo=UTC))  # 09:00 EDT
    _prefs(viewer)
    with captured_events() as events:
        response = as_viewer.post(f"/api/v1/streams/{drop.pk}/reminder/")
    assert response.status_code == 201
    body = {
        "stream": drop.pk,
        "starts_at": "2030-03-10T13:00:00Z",
        "deliver_at": "2030-03-10T12:00:00Z",
        "channels": ["inapp", "email"],
        "status": "scheduled",
    }
    assert response.json() == body
    reminder = Reminder.objects.get()
    assert events == [
        (
            "reminder.set",
            {
                "reminder": reminder.pk,
                "user": viewer.pk,
                "stream": drop.pk,
                **{k: v for k, v in body.items() if k != "stream"},
            },
            [],
        )
    ]
    again = as_viewer.post(f"/api/v1/streams/{drop.pk}/reminder/")
    assert again.status_code == 200 and again.json() == body
    assert as_viewer.get("/api/v1/me/reminders/").json() == [body]
    with captured_events() as events:
        assert as_viewer.delete(f"/api/v1/streams/{drop.pk}/reminder/").status_code == 204
    assert events == [("reminder.removed", {"reminder": reminder.pk, "user": viewer.pk, "stream": drop.pk}, [])]
    assert as_viewer.get("/api/v1/me/reminders/").json() == []
    assert as_viewer.delete(f"/api/v1/streams/{drop.pk}/reminder/").status_code == 204


def test_reminders_only_for_scheduled_drops(as_viewer, make_drop):
    live = make_drop()
    stream_start(stream=live)
    ended = make_drop()
    stream_end(stream=ended)
    started_late = make_drop(starts_at=timezone.now() - timedelta(minutes=1))  # the tick has not started it yet
    for stream in (live, ended, started_late):
        response = as_viewer.post(f"/api/v1/streams/{stream.pk}/reminder/")
        assert response.status_code == 409 and response.json()["code"] == "stream_not_scheduled"
    assert not Reminder.objects.exists()
    response = as_viewer.post("/api/v1/streams/999999/reminder/")
    assert response.status_code == 404 and response.json()["code"] == "stream_not_found"
    assert as_viewer.delete("/api/v1/streams/999999/reminder/").status_code == 404


def test_a_reminder_with_no_free_minute_is_unschedulable(viewer, make_drop):
    _prefs(
        viewer,
        windows=[{"weekday": 0, "start": "10:00", "end": "11:00"}],
        quiet_hours={"start": "09:00", "end": "12:00"},
    )
    reminder, _ = reminder_set(user=viewer, stream=make_drop())
    assert (reminder.status, reminder.deliver_at) == ("unschedulable", None)


def test_a_reminder_set_within_the_lead_goes_out_now_unless_now_is_quiet(viewer, make_drop):
    now = datetime(2030, 6, 3, 16, 0, tzinfo=UTC)  # 12:00 EDT
    drop = make_drop(starts_at=now + timedelta(minutes=20))
    _prefs(viewer)
    reminder, _ = reminder_set(user=viewer, stream=drop, now=now)
    assert (reminder.status, reminder.deliver_at) == ("scheduled", now)
    night = datetime(2030, 6, 4, 3, 0, tzinfo=UTC)  # 23:00 EDT, quiet
    other = UserFactory()
    _prefs(other)
    late = make_drop(starts_at=night + timedelta(minutes=20))
    reminder, _ = reminder_set(user=other, stream=late, now=night)
    assert (reminder.status, reminder.deliver_at) == ("missed", None)


def _apply(mark, *names):
    events = events_since(mark)
    return [apply_handler(event.pk, name) for event in events for name in names if event.type in _TYPES[name]]


_TYPES = {ON_UPDATED: {"stream.updated"}, ON_CANCELLED: {"stream.cancelled"}}


def test_a_drop_that_moves_takes_its_pending_reminders_along_sent_ones_stay_sent(viewer, make_drop):
    drop = make_drop(starts_at=datetime(2030, 3, 10, 13, 0, tzinfo=UTC))
    _prefs(viewer)
    reminder, _ = reminder_set(user=viewer, stream=drop)
    sent_viewer = UserFactory()
    sent, _ = reminder_set(user=sent_viewer, stream=drop)
    Reminder.objects.filter(pk=sent.pk).update(status=Reminder.Status.SENT, sent_at=timezone.now())
    mark = last_event_id()
    drop = stream_update(stream=drop, changes={"starts_at": datetime(2030, 3, 11, 2, 30, tzinfo=UTC)})  # 22:30 EDT
    with captured_events() as events:
        assert _apply(mark, ON_UPDATED) == ["applied"]
    reminder.refresh_from_db()
    # 21:30 EDT: free (quiet from 22:00).
    assert reminder.deliver_at == datetime(2030, 3, 11, 1, 30, tzinfo=UTC)
    assert reminder.starts_at == drop.starts_at
    assert events.of("reminder.set")[0][1]["deliver_at"] == "2030-03-11T01:30:00Z"
    sent.refresh_from_db()
    assert sent.status == "sent" and sent.starts_at == datetime(2030, 3, 10, 13, 0, tzinfo=UTC)
    # A change of the title only recomputes nothing.
    mark = last_event_id()
    stream_update(stream=drop, changes={"title": "Renamed"})
    with captured_events() as events:
        _apply(mark, ON_UPDATED)
    assert events == []


def test_a_cancelled_drop_cancels_its_pending_reminders(viewer, make_drop):
    drop = make_drop()
    reminder, _ = reminder_set(user=viewer, stream=drop)
    mark = last_event_id()
    stream_cancel(stream=drop)  # the Creators' API for drops and the admin's cancel
    assert _apply(mark, ON_CANCELLED) == ["applied"]
    reminder.refresh_from_db()
    assert (reminder.status, reminder.deliver_at) == ("cancelled", None)
    assert _apply(mark, ON_CANCELLED) == ["duplicate"]


def test_a_deleted_drop_takes_its_reminders(viewer, make_drop):
    drop = make_drop()
    reminder_set(user=viewer, stream=drop)
    stream_delete(stream=drop)
    assert not Reminder.objects.exists()


def test_handlers_are_registered_for_the_drops_events():
    from creatorcommerce.spine.registry import handlers_for

    assert ON_UPDATED in handlers_for("stream.updated")
    assert ON_CANCELLED in handlers_for("stream.cancelled")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_reminder_set_at_once_from_many_threads_is_one_reminder(make_drop):
    from tests.helpers import run_concurrently

    viewer = UserFactory()
    drop = make_drop()
    results = run_concurrently(lambda: reminder_set(user=viewer, stream=drop)[1], [()] * 8)
    assert sorted(results) == [False] * 7 + [True]
    assert Reminder.objects.filter(user=viewer, stream=drop).count() == 1


def test_staff_see_reminders_and_deliveries_in_the_admin_creators_do_not(client, viewer, make_drop, creator):
    from tests.factories import StaffFactory

    reminder_set(user=viewer, stream=make_drop())
    client.force_login(StaffFactory())
    for path in ("/admin/calendars/reminder/", "/admin/calendars/delivery/"):
        assert client.get(path).status_code == 200
    assert viewer.email.encode() in client.get("/admin/calendars/reminder/").content
    client.force_login(creator)
    assert client.get("/admin/calendars/reminder/").status_code == 403
