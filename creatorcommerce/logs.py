"""Request ids and the log formats (docs/operations.md, "Logs").

Every HTTP request has an id: the client's (or proxy's) ``X-Request-ID`` when it is well
formed, else a new one; it is answered in the response's ``X-Request-ID``
(``creatorcommerce/observe.py``). While the request is served the id is in a context
variable, so every log line written meanwhile carries it, and so does every spine event it
records (``OutboxEvent.request_id``); a handler applied to that event later, in a Celery
worker, runs with the event's id bound again (``creatorcommerce/spine/tasks.py``), and the
events it records carry it on. So one id follows a buy from the request through its events
to the handlers' log lines.

``LOG_FORMAT=json`` writes one JSON object per line (``JsonFormatter``); the default,
``plain``, is the human-readable line of the demo with `` [request_id=...]`` appended when
there is one.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import random
import re
from datetime import UTC, datetime

# What an incoming id may be: bounded, and only characters that are safe in a log line, a
# header and a URL (a UUID, a trace id, nginx's $request_id, "req-2026-12-05:42" all fit).
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
REQUEST_ID_MAX = 128

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def new_request_id() -> str:
    """32 random hex digits. Not ``uuid4()``: its ``os.urandom`` releases the GIL, and on the
    event loop that handed the GIL to a request thread and back, ~10 µs a request (measured,
    bench/metrics_cost.py). An id need not be unpredictable, only unique; ``random`` is
    reseeded in a forked child."""
    return f"{random.getrandbits(128):032x}"


def accepted_request_id(value: str | bytes | None) -> str | None:
    """``value`` if it is a well-formed request id, else None (a new one is made then)."""
    if not value:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value if REQUEST_ID_RE.match(value) else None


def current_request_id() -> str:
    """The id of the request (or the event's handler) being served here; "" outside one."""
    return _request_id.get()


def set_request_id(value: str) -> contextvars.Token:
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token) -> None:
    _request_id.reset(token)


@contextlib.contextmanager
def bound_request_id(value: str):
    """Run the block with ``value`` as the current request id (a handler applied to an event
    runs with the event's). An empty value keeps whatever is bound already."""
    if not value:
        yield
        return
    token = _request_id.set(value)
    try:
        yield
    finally:
        _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (``record.request_id``, "" when none),
    unless the record already has one (``extra={"request_id": ...}``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = _request_id.get()
        return True


class PlainFormatter(logging.Formatter):
    """The default human-readable line, with `` [request_id=...]`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None) or _request_id.get()
        return f"{line} [request_id={request_id}]" if request_id else line


# Attributes every LogRecord has: anything else on a record came from ``extra=`` and is
# written as a field of its own.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, ISO 8601 with milliseconds), ``level``,
    ``logger``, ``message``, ``request_id`` (when there is one), the fields passed with
    ``extra=`` and, for an exception, ``exc`` (the traceback as text)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or _request_id.get()
        if request_id:
            out["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str)
