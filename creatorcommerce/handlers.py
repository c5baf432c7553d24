"""Django's ASGI handler, running the middleware chain and the view in one thread hop.

Django's ``ASGIHandler`` runs the middleware chain in async mode. Django's own middleware
(sessions, CSRF, auth, messages, ...) are ``MiddlewareMixin`` classes whose async mode hands
``process_request`` and ``process_response`` to a thread one at a time, and the view (ours
are sync: the ORM is) is one more: about 16 hops between the event loop and the request's
thread for every request (``SyncToAsync.__call__`` counted 32 times per ``/livez``). The
WSGI handler runs the same chain as one sync call; this handler does that under ASGI: the
chain and the view run in one ``sync_to_async`` call, in the request's thread. Request
parsing, the request_started/finished signals and streaming the response stay Django's.
An async view still works: Django's sync chain runs it with ``async_to_sync``.
"""

from __future__ import annotations

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import FileResponse


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self):
        super(ASGIHandler, self).__init__()  # BaseHandler's, not ASGIHandler's async chain
        self.load_middleware(is_async=False)

    async def run_get_response(self, request):
        response = await sync_to_async(self.get_response, thread_sensitive=True)(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):  # the ASGI server does the chunking
            response.block_size = self.chunk_size
        return response


def get_asgi_application() -> SyncChainASGIHandler:
    """``django.core.asgi.get_asgi_application`` with the handler above."""
    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
