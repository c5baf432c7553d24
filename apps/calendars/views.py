"""The one-click stop page of a reminder (docs/calendars.md, "Stop links").

``GET`` only shows what the link stops and a button: mail scanners and link previews fetch
links, and must not stop anything. ``POST`` stops it: the page's button, or a mail client's
one-click unsubscribe (RFC 8058: ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``,
posted without cookies). The signed token is the permission, so there is no session and no
CSRF token to check. A bad token is a 400 page.
"""

from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.streams.models import Stream

from .services import reminder_delete, stop_token_read


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
