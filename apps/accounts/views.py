"""Account pages next to allauth's: the user's time zone."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from .forms import TimeZoneForm
from .services import user_set_time_zone


@login_required
def time_zone_edit(request):
    back = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = ""
    if request.method == "POST":
        form = TimeZoneForm(request.POST)
        if form.is_valid():
            user_set_time_zone(user=request.user, time_zone=form.cleaned_data["time_zone"])
            messages.success(request, f"Times are now shown in {request.user.time_zone}.")
            return redirect(back or "account_time_zone")
        status = 400
    else:
        form, status = TimeZoneForm(initial={"time_zone": request.user.time_zone}), 200
    return render(request, "account/time_zone.html", {"form": form, "next": back}, status=status)
