"""Views for tests/ops/test_asgi.py: a streamed body and the thread a request ran on."""

import threading

from django.http import JsonResponse, StreamingHttpResponse
from django.urls import path

closed: list[str] = []


class Chunks:
    """A streamed body that records when the server closes it."""

    def __iter__(self):
        yield from (b"one,", b"two,", b"three")

    def close(self):
        closed.append("stream")


def streamed(request):
    return StreamingHttpResponse(Chunks(), content_type="text/plain")


def where(request):
    return JsonResponse({"thread": threading.current_thread().name})


urlpatterns = [path("streamed/", streamed), path("where/", where)]
