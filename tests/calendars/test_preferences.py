"""``GET|PUT /api/v1/me/preferences/`` (docs/calendars.md, "Preferences"): defaults,
validation with machine codes and nothing written on a refusal, the audit entry and the
event of every change, and the viewer's pending reminders following a change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.audit.models import AuditEntry
from apps.calendars.models import Preference, Reminder, Window
from tests.helpers import captured_events

pytestmark = pytest.mark.django_db

GOOD = {
    "time_zone": "Europe/Berlin",
    "quiet_hours": {"start": "22:00", "end": "07:30"},
    "windows": [
        {"weekday": 4, "start": "18:00", "end": "24:00"},
        {"weekday": 0, "start": "12:00", "end": "13:00"},
        {"weekday": 0, "start": "18:00", "end": "20:00"},
    ],
    "channels": ["email", "inapp"],
    "lead_minutes": 30,
}


def test_defaults_use_the_accounts_time_zone(as_viewer):
    response = as_viewer.get("/api/v1/me/preferences/")
    assert response.status_code == 200
    assert response.json() == {
        "time_zone": "America/New_York",
        "quiet_hours": None,
        "windows": [],
        "channels": ["inapp"],
        "lead_minutes": 15,
    }
    assert not Preference.objects.exists()


def test_put_replaces_everything_and_get_shows_it(as_viewer, viewer):
    response = as_viewer.put("/api/v1/me/preferences/", GOOD, format="json")
    assert response.status_code == 200
    expected = {**GOOD, "windows": sorted(GOOD["windows"], key=lambda w: (w["weekday"], w["start"]))}
    assert response.json() == expected
    assert as_viewer.get("/api/v1/me/preferences/").json() == expected
    fewer = {**GOOD, "quiet_hours": None, "windows": [], "channels": []}
    assert as_viewer.put("/api/v1/me/preferences/", fewer, format="json").json() == fewer
    assert not Window.objects.filter(user=viewer).exists()


def test_every_change_is_audited_with_before_and_after_and_on_the_spine(as_viewer, viewer):
    with captured_events() as events:
        as_viewer.put("/api/v1/me/preferences/", GOOD, format="json")
    assert events.of("preferences.updated") == [
        (
            "preferences.updated",
            {"user": viewer.pk, "changed": ["time_zone", "quiet_hours", "windows", "channels", "lead_minutes"]},
            [],
        )
    ]
    entry = AuditEntry.objects.get(action="preferences.updated")
    assert entry.actor_id == viewer.pk and entry.object_type == "calendars.preference"
    assert entry.details["before"]["time_zone"] == "America/New_York"
    assert entry.details["after"]["quiet_hours"] == {"start": "22:00", "end": "07:30"}
    # The same again: nothing changes, no entry, no event.
    with captured_events() as events:
        as_viewer.put("/api/v1/me/preferences/", GOOD, format="json")
    assert events == []
    assert AuditEntry.objects.filter(action="preferences.updated").count() == 1
    # Putting back the old value (reversible): one more entry.
    as_viewer.put("/api/v1/me/preferences/", {**GOOD, "lead_minutes": 15}, format="json")
    last = AuditEntry.objects.filter(action="preferences.updated").order_by("-id").first()
    assert last.details["before"]["lead_minutes"] == 30 and last.details["after"]["lead_minutes"] == 15


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"time_zone": "Mars/Olympus"}, "invalid_time_zone"),
        ({"time_zone": "EST5EDT "}, "invalid_time_zone"),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "invalid_time"),
        ({"quiet_hours": {"start": "7:00", "end": "08:00"}}, "invalid_time"),
        ({"quiet_hours": {"start": "22:00", "end": "24:00"}}, "invalid_time"),
        ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, "invalid_quiet_hours"),
        ({"quiet_hours": {"start": "22:00"}}, "invalid"),
        ({"windows": [{"weekday": 7, "start": "10:00", "end": "11:00"}]}, "invalid_window"),
        ({"windows": [{"weekday": 1, "start": "11:00", "end": "10:00"}]}, "invalid_window"),
        ({"windows": [{"weekday": 1, "start": "10:00", "end": "10:00"}]}, "invalid_window"),
        ({"windows": [{"weekday": 1, "start": "10:00", "end": "12:60"}]}, "invalid_time"),
        (
            {
                "windows": [
                    {"weekday": 1, "start": "10:00", "end": "12:00"},
                    {"weekday": 1, "start": "11:59", "end": "13:00"},
                ]
            },
            "overlapping_windows",
        ),
        ({"channels": ["sms"]}, "invalid_channel"),
        ({"channels": "email"}, "invalid"),
        ({"lead_minutes": -1}, "invalid_lead_minutes"),
        ({"lead_minutes": 10081}, "invalid_lead_minutes"),
        ({"lead_minutes": "15"}, "invalid"),
        ({"lead_minutes": True}, "invalid"),
    ],
)
def test_bad_input_is_a_400_with_its_code_and_nothing_is_written(as_viewer, change, code):
    with captured_events() as events:
        response = as_viewer.put("/api/v1/me/preferences/", {**GOOD, **change}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert events == []
    assert not Preference.objects.exists() and not Window.objects.exists() and not AuditEntry.objects.exists()


def test_a_missing_key_is_a_400(as_viewer):
    body = dict(GOOD)
    del body["windows"]
    response = as_viewer.put("/api/v1/me/preferences/", body, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert "windows" in response.json()["errors"]


def test_a_refused_change_keeps_the_saved_preferences(as_viewer):
    as_viewer.put("/api/v1/me/preferences/", GOOD, format="json")
    bad = {**GOOD, "lead_minutes": 5, "windows": [{"weekday": 1, "start": "10:00", "end": "09:00"}]}
    assert as_viewer.put("/api/v1/me/preferences/", bad, format="json").status_code == 400
    assert as_viewer.get("/api/v1/me/preferences/").json()["lead_minutes"] == 30
    assert Window.objects.count() == 3


def test_adjacent_windows_are_allowed(as_viewer):
    body = {
        **GOOD,
        "windows": [
            {"weekday": 1, "start": "10:00", "end": "12:00"},
            {"weekday": 1, "start": "12:00", "end": "13:00"},
        ],
    }
    assert as_viewer.put("/api/v1/me/preferences/", body, format="json").status_code == 200


def test_anonymous_is_a_401(api_client):
    assert api_client.get("/api/v1/me/preferences/").status_code == 401


def test_a_change_recomputes_the_viewers_pending_reminders(as_viewer, viewer, make_drop):
    drop = make_drop(starts_at=datetime(2030, 6, 3, 16, 0, tzinfo=UTC))  # a Monday, 12:00 in New York
    as_viewer.post(f"/api/v1/streams/{drop.pk}/reminder/")
    reminder = Reminder.objects.get()
    assert reminder.deliver_at == datetime(2030, 6, 3, 15, 45, tzinfo=UTC)  # defaults: 15 min before
    with captured_events() as events:
        as_viewer.put(
            "/api/v1/me/preferences/",
            {
                "time_zone": "America/New_York",
                "quiet_hours": {"start": "09:00", "end": "11:45"},
                "windows": [],
                "channels": ["email"],
                "lead_minutes": 60,
            },
            format="json",
        )
    reminder.refresh_from_db()
    # 11:00 EDT is quiet (09:00-11:45): the last free minute before it is 08:59 EDT.
    assert reminder.deliver_at == datetime(2030, 6, 3, 12, 59, tzinfo=UTC)
    assert reminder.channels == ["email"]
    assert [e[0] for e in events] == ["preferences.updated", "reminder.set"]
    assert events.of("reminder.set")[0][1]["deliver_at"] == "2030-06-03T12:59:00Z"
