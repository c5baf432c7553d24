"""One run at a time per node (the relay, the catalog pull; docs/edge.md)."""

from __future__ import annotations

import contextlib
import threading

from django.db import connection


class SingleRun:
    """``with single_run() as got:`` — ``got`` is False when another run holds it: in this
    process (a thread lock) or, on PostgreSQL, in any process of the node (an advisory lock
    on ``key``, which the database releases if the process dies). SQLite is the embedded
    mode: one process, so the thread lock is the whole story."""

    def __init__(self, key: int):
        self.key = key
        self.thread_lock = threading.Lock()

    @contextlib.contextmanager
    def __call__(self):
        if not self.thread_lock.acquire(blocking=False):
            yield False
            return
        try:
            if connection.vendor != "postgresql":
                yield True
                return
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [self.key])
                got = cursor.fetchone()[0]
            try:
                yield got
            finally:
                if got:
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT pg_advisory_unlock(%s)", [self.key])
        finally:
            self.thread_lock.release()
