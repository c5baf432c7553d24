"""Fixtures of the overload tests (admission control, sold-out from memory)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Each test starts with this process's admission counters, sold-out memory and learnt
    routes empty (they are per process, and the test process is one)."""
    from apps.orders import soldout as orders_soldout
    from creatorcommerce import admission, soldout

    def reset():
        admission._admission._values.clear()
        soldout._memory._values.clear()
        orders_soldout._learnt._values.clear()

    reset()
    yield
    reset()


@pytest.fixture
def all_queries(monkeypatch):
    """Every SQL statement sent through Django by any thread (the requests' pool too)."""
    from django.db.backends import utils

    from tests.overload.asgi import QueryCounter

    counter = QueryCounter()
    original = utils.CursorWrapper._execute_with_wrappers

    def counting(self, sql, params, many, executor):
        with counter.lock:
            counter.statements.append(sql)
        return original(self, sql, params, many, executor)

    monkeypatch.setattr(utils.CursorWrapper, "_execute_with_wrappers", counting)
    return counter
