"""Template tags of the calendars app: the reminder and follow panel of the stream page
(docs/calendars.md, "In the browser"). A tag, not a context processor or a hook in the
streams view: the streams app may not import calendars (docs/architecture.md, "Layers"), and
its template only names this tag, as it includes the pop-up panel of geofences."""

from __future__ import annotations

from django import template
from django.utils import timezone

from apps.streams.models import Stream

from ..selectors import is_following, reminder_body, reminder_of, viewer_settings

register = template.Library()


@register.inclusion_tag("calendars/_stream_panel.html", takes_context=True)
def calendar_panel(context, stream):
    """The "Remind me" and "Follow" toggles of a drop's page, with the viewer's state."""
    request = context["request"]
    user = request.user
    signed_in = user.is_authenticated
    state = {"stream": stream.pk, "shop": stream.shop.slug, "shop_name": stream.shop.name, "signed_in": signed_in}
    if signed_in:
        settings = viewer_settings(user=user)
        reminder = reminder_of(user=user, stream_id=stream.pk)
        state |= {
            "time_zone": settings.availability.time_zone,
            "lead_minutes": settings.lead_minutes,
            "reminder": reminder_body(reminder) if reminder else None,
            "following": is_following(user=user, shop=stream.shop),
        }
    return {
        "request": request,
        "user": user,
        "stream": stream,
        # Only a drop still ahead takes a reminder (docs/calendars.md, "Reminders").
        "remindable": stream.status == Stream.Status.SCHEDULED and stream.starts_at > timezone.now(),
        "state": state,
    }


CHANNEL_NAMES = {"email": "e-mail", "inapp": "in-app"}


@register.filter
def channel_names(channels) -> str:
    """``["email", "inapp"]`` as "e-mail, in-app"."""
    return ", ".join(CHANNEL_NAMES.get(c, c) for c in channels or ())
