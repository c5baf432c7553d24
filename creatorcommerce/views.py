from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .api import is_api_request, json_error
from .health import run_checks


@never_cache
@require_GET
def livez(request):
    """Liveness: the process answers (no service checks; those are /healthz). Also the
    benchmarks' framework ceiling: the full middleware stack and nothing else."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def healthz(request):
    report, down = run_checks()
    body = {**report, "node": settings.NODE_ID, "role": settings.NODE_ROLE}
    if down:
        body["down"] = down
    return JsonResponse(body, status=503 if down else 200)


def not_found(request, exception=None):
    if is_api_request(request):
        return json_error(request, "not_found", "No such resource.", 404)
    return render(request, "404.html", status=404)


def server_error(request):
    if is_api_request(request):
        return json_error(request, "server_error", "Something went wrong on our side.", 500)
    return render(request, "500.html", status=500)


def bad_request(request, exception=None):
    if is_api_request(request):
        return json_error(request, "bad_request", "The request is malformed.", 400)
    return render(request, "400.html", status=400)


def permission_denied(request, exception=None):
    if is_api_request(request):
        return json_error(request, "permission_denied", "You are not allowed to do this.", 403)
    return render(request, "403.html", status=403)
