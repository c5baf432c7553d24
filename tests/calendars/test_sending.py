"""Sending (docs/calendars.md, "Sending" and "Stop links"): the dispatcher sends a due
reminder once per viewer, drop and channel, however often and however concurrently it
runs (two threads; two beats and a redelivered task on a real worker over Redis); every
message carries a one-click stop link."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from apps.calendars.models import Delivery, Notification, Reminder
from apps.calendars.services import (
    delivery_send,
    preferences_parse,
    preferences_set,
    reminder_set,
    reminders_dispatch,
    stop_token,
)
from apps.streams.services import stream_end
from tests.factories import UserFactory
from tests.helpers import WAIT, captured_events, run_concurrently

BOTH = ["inapp", "email"]


def _viewer(channels=BOTH, lead=15):
    user = UserFactory()
    preferences_set(
        user=user,
        prefs=preferences_parse(
            time_zone="UTC", quiet_hours=None, windows=[], channels=list(channels), lead_minutes=lead
        ),
    )
    return user


def _due_reminder(make_drop, viewer):
    """A reminder for a drop 10 minutes away with a 15-minute lead: due now."""
    drop = make_drop(starts_at=timezone.now() + timedelta(minutes=10))
    reminder, _ = reminder_set(user=viewer, stream=drop)
    assert reminder.status == "scheduled" and reminder.deliver_at <= timezone.now()
    return reminder


@pytest.mark.django_db
def test_a_due_reminder_goes_out_on_each_channel_once(make_drop, settings):
    settings.SITE_URL = "https://shop.example"
    viewer = _viewer()
    reminder = _due_reminder(make_drop, viewer)
    with captured_events() as events:
        counts = reminders_dispatch()
    assert counts["sent"] == 1 and counts["emails"] == 1
    assert events == [
        (
            "reminder.sent",
            {"reminder": reminder.pk, "user": viewer.pk, "stream": reminder.stream_id, "channels": BOTH},
            [],
        )
    ]
    reminder.refresh_from_db()
    assert reminder.status == "sent" and reminder.sent_at is not None
    [message] = mail.outbox
    assert message.to == [viewer.email] and message.subject == "Starting soon: Friday drop"
    stop = f"https://shop.example/calendars/stop/{stop_token(user_id=viewer.pk, stream_id=reminder.stream_id)}/"
    assert message.extra_headers["List-Unsubscribe"] == f"<{stop}>"
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert stop in message.body and f"https://shop.example/streams/{reminder.stream_id}/" in message.body
    [note] = Notification.objects.filter(user=viewer)
    assert note.stop_url == stop and note.title == "Starting soon: Friday drop"
    assert sorted(Delivery.objects.values_list("channel", "status")) == [("email", "sent"), ("inapp", "sent")]
    # Again: nothing more.
    assert reminders_dispatch()["sent"] == 0
    assert len(mail.outbox) == 1 and Notification.objects.count() == 1


@pytest.mark.django_db
def test_notifications_api_lists_and_marks_read(make_drop, api_client):
    viewer = _viewer(channels=["inapp"])
    reminder = _due_reminder(make_drop, viewer)
    reminders_dispatch()
    assert mail.outbox == []
    api_client.force_login(viewer)
    [body] = api_client.get("/api/v1/me/notifications/").json()
    assert body["kind"] == "reminder" and body["stream"] == reminder.stream_id and body["read_at"] is None
    read = api_client.post(f"/api/v1/me/notifications/{body['id']}/read/")
    assert read.status_code == 200 and read.json()["read_at"] is not None
    api_client.force_login(UserFactory())
    assert api_client.get("/api/v1/me/notifications/").json() == []
    response = api_client.post(f"/api/v1/me/notifications/{body['id']}/read/")
    assert response.status_code == 404 and response.json()["code"] == "notification_not_found"


@pytest.mark.django_db
def test_a_reminder_stopped_and_set_again_is_not_sent_twice(make_drop, as_viewer, viewer):
    preferences_set(
        user=viewer,
        prefs=preferences_parse(time_zone="UTC", quiet_hours=None, windows=[], channels=BOTH, lead_minutes=15),
    )
    reminder = _due_reminder(make_drop, viewer)
    reminders_dispatch()
    assert as_viewer.delete(f"/api/v1/streams/{reminder.stream_id}/reminder/").status_code == 204
    assert as_viewer.post(f"/api/v1/streams/{reminder.stream_id}/reminder/").status_code == 201
    reminders_dispatch()
    assert len(mail.outbox) == 1 and Notification.objects.count() == 1
    assert Reminder.objects.get().status == "sent"


@pytest.mark.django_db
def test_a_reminder_of_an_ended_drop_is_missed(make_drop):
    viewer = _viewer()
    reminder = _due_reminder(make_drop, viewer)
    stream_end(stream=reminder.stream)
    assert reminders_dispatch()["missed"] == 1
    reminder.refresh_from_db()
    assert reminder.status == "missed" and mail.outbox == [] and not Delivery.objects.exists()


@pytest.mark.django_db
def test_a_failing_mail_server_is_retried_and_never_doubles(make_drop, settings, monkeypatch):
    viewer = _viewer(channels=["email"])
    _due_reminder(make_drop, viewer)
    from django.core.mail.backends.locmem import EmailBackend

    calls = {"n": 0}
    real = EmailBackend.send_messages

    def flaky(self, messages):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionRefusedError("smtp down")
        return real(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", flaky)
    counts = reminders_dispatch()
    assert counts["failed"] == 1 and mail.outbox == []
    assert Delivery.objects.get().status == "pending"
    assert reminders_dispatch()["emails"] == 1
    assert len(mail.outbox) == 1 and Delivery.objects.get().attempts == 2
    assert delivery_send(delivery_id=Delivery.objects.get().pk) == "skipped"


@pytest.mark.django_db
def test_an_e_mail_still_pending_after_its_drop_started_is_not_sent_late(make_drop, monkeypatch):
    viewer = _viewer(channels=["email"])
    _due_reminder(make_drop, viewer)
    from django.core.mail.backends.locmem import EmailBackend

    def down(self, messages):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(EmailBackend, "send_messages", down)
    assert reminders_dispatch()["failed"] == 1
    monkeypatch.undo()
    delivery = Delivery.objects.get()
    drop = delivery.stream
    late = drop.starts_at + timedelta(minutes=11)
    assert delivery_send(delivery_id=delivery.pk, now=late) == "failed"
    assert mail.outbox == [] and Delivery.objects.get().status == "failed"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_send_each_message_once(make_drop):
    viewers = [_viewer() for _ in range(6)]
    for viewer in viewers:
        _due_reminder(make_drop, viewer)
    results = run_concurrently(reminders_dispatch, [()] * 4)
    assert sum(r["sent"] for r in results) == 6 and sum(r["emails"] for r in results) == 6
    assert len(mail.outbox) == 6 and sorted(m.to[0] for m in mail.outbox) == sorted(v.email for v in viewers)
    assert Notification.objects.count() == 6
    assert Delivery.objects.filter(status="sent").count() == 12


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_beats_and_a_redelivered_task_on_a_real_worker_send_once(make_drop, settings):
    """The beat's task on the Redis broker, consumed by a real worker: enqueued by two beats,
    and its message delivered once more (the same task id, as a redelivery after a lost
    acknowledgement looks), while this thread dispatches at the same time."""
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    from apps.calendars.tasks import dispatch_reminders
    from creatorcommerce.celery import app

    assert settings.CELERY_BROKER_URL.startswith("redis://")
    viewers = [_viewer() for _ in range(3)]
    for viewer in viewers:
        _due_reminder(make_drop, viewer)
    finished = []

    def count(sender=None, **kwargs):
        if sender is not None and sender.name == dispatch_reminders.name:
            finished.append(kwargs.get("task_id"))

    task_postrun.connect(count, weak=False)
    app.conf.task_always_eager = False
    app.control.purge()
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            dispatch_reminders.delay()  # one beat
            dispatch_reminders.delay()  # a second beat, by mistake
            dispatch_reminders.apply_async(task_id="calendars-redelivered")
            dispatch_reminders.apply_async(task_id="calendars-redelivered")  # the same message again
            reminders_dispatch()  # and this thread, concurrently
            deadline = time.monotonic() + WAIT
            while len(finished) < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        task_postrun.disconnect(count)
    assert len(finished) == 4
    assert len(mail.outbox) == 3 and sorted(m.to[0] for m in mail.outbox) == sorted(v.email for v in viewers)
    assert Notification.objects.count() == 3
    assert Delivery.objects.filter(status="sent").count() == 6
    assert set(Reminder.objects.values_list("status", flat=True)) == {"sent"}


# -- stop links ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_stop_page_asks_then_stops_on_post(make_drop, client):
    viewer = _viewer()
    drop = make_drop()
    reminder_set(user=viewer, stream=drop)
    url = f"/calendars/stop/{stop_token(user_id=viewer.pk, stream_id=drop.pk)}/"
    page = client.get(url)
    assert page.status_code == 200 and b"Stop the reminder" in page.content and b'method="post"' in page.content
    assert Reminder.objects.exists()  # a GET (a mail scanner) stops nothing
    with captured_events() as events:
        done = client.post(url)
    assert done.status_code == 200 and b"Reminder stopped" in done.content
    assert not Reminder.objects.exists() and [e[0] for e in events] == ["reminder.removed"]
    again = client.post(url)
    assert again.status_code == 200 and b"Nothing to stop" in again.content


@pytest.mark.django_db
def test_one_click_post_from_a_mail_client_rfc_8058(make_drop):
    from django.test import Client

    viewer = _viewer(channels=["email"])
    reminder = _due_reminder(make_drop, viewer)
    # The claim writes the e-mail's delivery; the viewer stops before it leaves.
    from apps.calendars.services import reminder_claim

    reminder_claim(reminder_id=reminder.pk)
    url = f"/calendars/stop/{stop_token(user_id=viewer.pk, stream_id=reminder.stream_id)}/"
    response = Client(enforce_csrf_checks=True).post(
        url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert not Reminder.objects.exists()
    assert Delivery.objects.get().status == "stopped"
    reminders_dispatch()
    assert mail.outbox == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "token",
    ["nonsense", "eyJ1IjoxLCJzIjoyfQ:1abc:forged", "a" * 300, "x%20y:%E2%80%AE", "W10:1tAbCd:xyz"],
)
def test_a_bad_stop_token_is_a_400_page(client, token):
    for method in (client.get, client.post):
        response = method(f"/calendars/stop/{token}/")
        assert response.status_code == 400
        assert b"This link is not valid" in response.content


@pytest.mark.django_db
def test_a_token_signed_for_something_else_is_refused(client):
    from django.core import signing

    from apps.calendars.services import STOP_SALT

    other = signing.dumps({"u": 1, "s": 2}, salt="another.purpose", compress=False)
    assert client.get(f"/calendars/stop/{other}/").status_code == 400
    for shape in ([1, 2], {"u": "1", "s": 2}, {"u": True, "s": 2}):
        token = signing.dumps(shape, salt=STOP_SALT, compress=False)
        assert client.post(f"/calendars/stop/{token}/").status_code == 400


@pytest.mark.django_db
def test_a_stop_link_for_a_deleted_drop_says_so(client):
    response = client.get(f"/calendars/stop/{stop_token(user_id=1, stream_id=424242)}/")
    assert response.status_code == 200 and b"This drop is gone" in response.content


@pytest.mark.django_db
def test_a_second_claim_in_another_transaction_is_refused_by_the_unique_row(make_drop):
    """The unique (viewer, drop, channel) row is the last guard: even a claim that got past
    the reminder's lock cannot write a second delivery."""
    from django.db import IntegrityError

    viewer = _viewer(channels=["email"])
    reminder = _due_reminder(make_drop, viewer)
    reminders_dispatch()
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(
            user=viewer, stream=reminder.stream, channel="email", status="pending", created_at=timezone.now()
        )


@pytest.mark.django_db
def test_new_york_viewer_with_quiet_hours_is_reminded_at_the_right_instant_on_spring_forward_morning(
    make_drop, as_viewer, viewer
):
    """The issue's "done when", end to end: preferences through the API, a drop at 08:30 EDT
    on 2030-03-10 (clocks sprang forward at 02:00), quiet hours 22:00-08:00, lead 60. 07:30
    EDT is quiet, so the reminder goes out at 21:59 EST the evening before (02:59Z), not a
    minute earlier, and nothing is sent before then."""
    from datetime import UTC, datetime

    as_viewer.put(
        "/api/v1/me/preferences/",
        {
            "time_zone": "America/New_York",
            "quiet_hours": {"start": "22:00", "end": "08:00"},
            "windows": [],
            "channels": ["email", "inapp"],
            "lead_minutes": 60,
        },
        format="json",
    )
    drop = make_drop(starts_at=datetime(2030, 3, 10, 12, 30, tzinfo=UTC))  # 08:30 EDT
    body = as_viewer.post(f"/api/v1/streams/{drop.pk}/reminder/").json()
    assert body["deliver_at"] == "2030-03-10T02:59:00Z"
    at = datetime(2030, 3, 10, 2, 59, tzinfo=UTC)
    assert reminders_dispatch(now=at - timedelta(seconds=1))["sent"] == 0
    assert mail.outbox == []
    assert reminders_dispatch(now=at)["sent"] == 1
    assert len(mail.outbox) == 1 and "Sunday 10 March, 08:30 (America/New_York)" in mail.outbox[0].body
