"""The one-click stop page of a reminder (docs/calendars.md, "Stop links"), the ICS feeds
(further down; "Feeds") and the viewer's calendar page (at the end; "In the browser").

``GET`` only shows what the link stops and a button: mail scanners and link previews fetch
links, and must not stop anything. ``POST`` stops it: the page's button, or a mail client's
one-click unsubscribe (RFC 8058: ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``,
posted without cookies). The signed token is the permission, so there is no session and no
CSRF token to check. A bad token is a 400 page.
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseNotModified
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, ensure_csrf_cookie
from django.views.decorators.http import require_http_methods, require_safe

from apps.accounts.forms import time_zone_choices
from apps.accounts.models import Shop
from apps.consents.selectors import consent_granted
from apps.streams.models import Stream

from .feeds import build_calendar, feed_by_token, feed_etag, feed_url, shop_drops, viewer_drops
from .models import Channel
from .selectors import (
    follows_of,
    notifications_of,
    preferences_body,
    reminders_with_drops,
    viewer_settings,
)
from .services import feed_get, reminder_delete, stop_token_read


@never_cache
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def stop(request, token: str):
    found = stop_token_read(token)
    if found is None:
        return render(request, "calendars/stop_invalid.html", status=400)
    user_id, stream_id = found
    stream = Stream.objects.filter(pk=stream_id).select_related("shop").first()
    if request.method == "POST":
        stopped = reminder_delete(user_id=user_id, stream_id=stream_id)
        return render(request, "calendars/stop_done.html", {"stream": stream, "stopped": stopped})
    return render(request, "calendars/stop.html", {"stream": stream})


# -- ICS feeds (docs/calendars.md, "Feeds") ----------------------------------------------------

ICS_TYPE = "text/calendar; charset=utf-8"
# The feeds are computed on every request, so a drop's change shows at the next fetch; these
# bound how long a cache may keep an answer (a 304 is cheap: the ETag is compared first).
PRIVATE_CACHE = "private, max-age=60"
PUBLIC_CACHE = "public, max-age=300"


def _ics(request, *, kind: str, name: str, drops, lead_minutes, cache_control: str, filename: str):

    etag = feed_etag(kind=kind, drops=drops, lead_minutes=lead_minutes)
    matches = [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]
    if etag in matches or "*" in matches:
        response = HttpResponseNotModified()
    else:
        body = build_calendar(name=name, drops=drops, now=timezone.now(), lead_minutes=lead_minutes)
        response = HttpResponse(body, content_type=ICS_TYPE)
        response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    if kind == "private":
        response["X-Robots-Tag"] = "noindex"
        response["Referrer-Policy"] = "no-referrer"
    return response


@require_http_methods(["GET", "HEAD"])
def viewer_feed(request, token: str):
    """``/calendars/<token>.ics``: the viewer's private feed. Any token that opens no feed
    (malformed, rotated, revoked) is a plain 404."""

    feed = feed_by_token(token)
    if feed is None:
        raise Http404("No such calendar feed.")
    user = feed.user
    return _ics(
        request,
        kind="private",
        name="My drops",
        drops=viewer_drops(user=user, now=timezone.now()),
        lead_minutes=viewer_settings(user=user).lead_minutes,
        cache_control=PRIVATE_CACHE,
        filename="drops.ics",
    )


@require_http_methods(["GET", "HEAD"])
def shop_feed(request, slug: str):
    """``/calendars/shops/<slug>.ics``: every drop of the shop, public."""

    shop = Shop.objects.filter(slug=slug).first()
    if shop is None:
        raise Http404("No such shop.")
    return _ics(
        request,
        kind="public",
        name=f"{shop.name} drops",
        drops=shop_drops(shop=shop, now=timezone.now()),
        lead_minutes=None,
        cache_control=PUBLIC_CACHE,
        filename=f"{shop.slug}.ics",
    )


# -- the viewer's calendar page (docs/calendars.md, "In the browser") -------------------------

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _webcal(url: str) -> str:
    """The feed's URL for "Subscribe": calendar apps open ``webcal://`` links (the same
    address, fetched over http or https as the app decides)."""
    return "webcal://" + url.split("://", 1)[1]


@never_cache  # it shows the private feed's URL
@ensure_csrf_cookie  # the page's script writes through the API with the session
@require_safe
@login_required
def my_calendar(request):
    """``/me/calendar/``: the viewer's reminder preferences, reminders, notifications, followed
    shops and private calendar feed, rendered here in their reminder zone; the page's script
    (static/js/calendar.js) changes them through the calendars API."""
    user = request.user
    settings = viewer_settings(user=user)
    prefs = preferences_body(settings)
    url = feed_url(feed_get(user=user)) if consent_granted(user=user, kind="calendar") else None
    windows = [
        {**window, "end": "00:00" if window["end"] == "24:00" else window["end"]}  # the form's midnight
        for window in prefs["windows"]
    ]
    return render(
        request,
        "calendars/my_calendar.html",
        {
            "prefs": prefs,
            "windows": windows,
            "zone": prefs["time_zone"],
            "zones": time_zone_choices(),
            "weekdays": list(enumerate(WEEKDAYS)),
            "channels": [(c.value, "E-mail" if c.value == "email" else "In-app, on this site") for c in Channel],
            "saved": settings.saved,
            "reminders": reminders_with_drops(user=user),
            "follows": follows_of(user=user),
            "notifications": notifications_of(user=user),
            "feed_url": url,
            "webcal_url": _webcal(url) if url else None,
        },
    )
