"""Forms of the account pages: the user's time zone, also guessed from the browser at signup."""

from __future__ import annotations

from django import forms

from .models import time_zone_names
from .services import user_set_time_zone


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(time_zone_names())]


class TimeZoneField(forms.ChoiceField):
    def __init__(self, **kwargs):
        kwargs.setdefault("choices", time_zone_choices)
        kwargs.setdefault("label", "Time zone")
        super().__init__(**kwargs)


class TimeZoneForm(forms.Form):
    time_zone = TimeZoneField(
        help_text="Pages and the admin show times in this zone, and read the times you type in it."
    )


class SignupTimeZoneForm(forms.Form):
    """Added to allauth's signup form (ACCOUNT_SIGNUP_FORM_CLASS): a hidden field that
    static/js/time-zone.js fills with the browser's zone. Optional: without it, or with a
    name zoneinfo does not know, the account keeps the default zone."""

    time_zone = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def signup(self, request, user):
        name = (self.cleaned_data.get("time_zone") or "").strip()
        if name in time_zone_names():
            user_set_time_zone(user=user, time_zone=name)
