"""Django's ASGI handler, serving each request's sync part in one hop to a bounded pool.

Django's ``ASGIHandler`` runs the middleware chain in async mode. Django's own middleware
(sessions, CSRF, auth, messages, ...) are ``MiddlewareMixin`` classes whose async mode hands
``process_request`` and ``process_response`` to a thread one at a time, and the view (ours
are sync: the ORM is) is one more: about 16 hops between the event loop and a thread for
every request. Around them, the request_started and request_finished signals are two more,
and every request gets a ``ThreadSensitiveContext``: a new single-thread executor, so a new
OS thread started and joined per request, and as many threads contending for the GIL as
there are requests in flight.

This handler does what the WSGI handler does, under ASGI: the body is read on the event
loop, then one ``sync_to_async`` call runs request_started, the middleware chain and the
view, and (for a response whose content is already in memory) closes it, which sends
request_finished and gives the request's database connection back to the pool. That call
runs on a pool of ``ASGI_SYNC_THREADS`` long-lived threads per process, so at most that
many requests run Python at once; the rest wait on the event loop, not in the GIL. The
response is then sent from the event loop. A streaming response (``FileResponse``, ...) is
iterated on the event loop as Django does and closed after its last chunk.

Before the pool (creatorcommerce/admission.py): a request an app can answer from memory is
answered on the event loop (a buy of a sold-out SKU), and past ``ADMISSION_MAX_IN_FLIGHT``
requests in the pool (running or waiting) the next is refused at once with 503 overloaded
instead of waiting: the pool's queue is bounded.

What is dropped: Django cancels the view when the client disconnects mid-request; a sync
view cannot be stopped anyway (its thread runs on), and a response sent to a closed
connection is discarded by the server. An async view still works: the sync chain runs it
with ``async_to_sync``. A streaming response with a sync iterator is consumed by Django in
asgiref's shared sync thread, not in the request's: such an iterator must not use the
database (none of ours stream; give one that must an async iterator).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse
from django.urls import set_script_prefix

from creatorcommerce.admission import BUY_PATH, admission, answer_early, classify, path_of, refusal, send_answer
from creatorcommerce.observe import SCOPE_KEY
from creatorcommerce.process import PerProcess
from creatorcommerce.spine.processes import listen_here

BUY_ROUTE = BUY_PATH.lstrip("/")  # the URL pattern of the buy, as creatorcommerce.observe labels it

_executor: PerProcess[ThreadPoolExecutor] = PerProcess(
    lambda: ThreadPoolExecutor(max_workers=settings.ASGI_SYNC_THREADS, thread_name_prefix="django-request")
)


def sync_executor() -> ThreadPoolExecutor:
    """The process's pool for requests' sync code."""
    return _executor.get()


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self):
        super(ASGIHandler, self).__init__()  # BaseHandler's, not ASGIHandler's async chain
        self.load_middleware(is_async=False)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        listen_here()  # this process hears the events its memory follows (spine/processes.py)
        # Answered here, on the event loop, when it can be: from memory (a sold-out buy), or
        # refused (overloaded) before any session, authentication or database work.
        path = path_of(scope)
        answer = answer_early(scope, path, body_file)
        controller, cls = admission(), classify(scope["method"], path)
        if answer is None and not controller.admit(cls):
            answer = refusal(path)
        if answer is not None:
            note = scope.get(SCOPE_KEY)
            if note is not None and path == BUY_PATH:  # the buy's route, as the view's answers have it
                note["route"] = BUY_ROUTE
            body_file.close()
            await send_answer(send, answer)
            return
        in_pool = sync_to_async(thread_sensitive=False, executor=sync_executor())
        try:
            response = await in_pool(self.serve)(scope, body_file)
        finally:
            controller.release(cls)
        try:
            await self.send_response(response, send)
        finally:
            if response.streaming:
                await in_pool(self.finish)(response, body_file)

    def serve(self, scope, body_file):
        """Everything of one request that runs in a thread: signals, middleware, view."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):  # the ASGI server does the chunking
                response.block_size = self.chunk_size
        if not response.streaming:
            self.finish(response, body_file)
        return response

    def finish(self, response, body_file):
        try:
            response.close()  # request_finished: connections go back to the pool
        finally:
            body_file.close()


def get_asgi_application() -> SyncChainASGIHandler:
    """``django.core.asgi.get_asgi_application`` with the handler above."""
    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
