"""The site's URLs plus a view that holds its pool thread until the test lets it go: the pool
made busy deterministically (tests/overload/test_admission.py)."""

import threading

from django.http import JsonResponse
from django.urls import path

from creatorcommerce import urls as site

gate = threading.Event()
inside = []  # one entry per request that reached the view
lock = threading.Lock()


def block(request):
    with lock:
        inside.append(request.path)
    gate.wait(timeout=60)
    return JsonResponse({"released": True})


urlpatterns = [path("block/", block), path("api/v1/block/", block), *site.urlpatterns]
handler400, handler403, handler404, handler500 = site.handler400, site.handler403, site.handler404, site.handler500
