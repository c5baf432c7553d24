"""Under daphne: requests whose headers are too large answer ``431`` JSON, not a dropped connection.

daphne parses HTTP with Twisted's ``HTTPChannel``. A header line longer than its line limit
(16 KB, e.g. a 20,000-character ``Idempotency-Key``) made it call ``LineReceiver``'s
``lineLengthExceeded``, which closes the connection without a word: the client saw "empty
reply from server". Headers over the 16 KB total got a bare ``400`` with no body. Both now
answer ``431 headers_too_large`` in the API's JSON error format (docs/operations.md), and other
requests Twisted cannot parse a JSON ``400 bad_request``; the connection is then closed, as
before. The limits themselves are Twisted's (16 KB per line and in total), which are also what
common proxies allow by default.

Also: Twisted's ``Request`` parses the body of every form POST (``x-www-form-urlencoded`` and
``multipart/form-data``, through the ``email`` package) into ``request.args``, and the
Content-Type of every POST, for nothing: daphne hands the raw body to the application, which
parses it itself. In a drop's stampede that Content-Type parse alone was 11 % of the
event loop's CPU (py-spy, docs/performance.md), and a large multipart body was parsed twice.
Twisted's own switch for it (``parsePOSTFormSubmission``) is turned off for daphne's requests.

Installed by creatorcommerce/asgi.py when the process runs daphne; uvicorn answers such
requests itself.
"""

from __future__ import annotations

import json

_STATUS = {400: b"Bad Request", 431: b"Request Header Fields Too Large"}


def _respond(channel, status: int, code: str, message: str) -> None:
    body = json.dumps({"code": code, "message": message}).encode()
    head = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
    channel.transport.write(head % (status, _STATUS[status], len(body)) + body)
    channel.loseConnection()


def _headers_too_large(channel) -> None:
    _respond(channel, 431, "headers_too_large", "The request's headers are too large (16 KB at most).")


def _no_form_parsing() -> None:
    from daphne.http_protocol import WebRequest

    if getattr(WebRequest, "_form_parsing_off", False):
        return
    original = WebRequest.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False  # Twisted's attribute, set by its __init__

    WebRequest.__init__ = __init__
    WebRequest._form_parsing_off = True


def install() -> None:
    """Patch Twisted's HTTPChannel and daphne's requests (once per process)."""
    from twisted.web import http

    _no_form_parsing()

    channel = http.HTTPChannel
    if getattr(channel, "_json_error_answers", False):
        return

    def lineLengthExceeded(self, line):  # Twisted's name
        _headers_too_large(self)

    def _respondToBadRequestAndDisconnect(self):  # Twisted's name
        if getattr(self, "_receivedHeaderSize", 0) > self.totalHeadersSize:
            _headers_too_large(self)
        else:
            _respond(self, 400, "bad_request", "The request is not valid HTTP.")

    channel.lineLengthExceeded = lineLengthExceeded
    channel._respondToBadRequestAndDisconnect = _respondToBadRequestAndDisconnect
    channel._json_error_answers = True
