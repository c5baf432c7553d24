"""Erasers: what upper apps delete when a user revokes a consent (docs/geofences.md, "Consent");
and granters: what they set up when a user grants one (docs/calendars.md, "Consent").

An app that stores data under a consent registers, from its ``AppConfig.ready``, a function
``eraser(user) -> int`` (rows deleted) for that consent's kind::

    @consent_eraser("location")
    def erase_positions(user) -> int: ...

``consent_set`` calls every eraser of the kind inside the revoking transaction, so the
consent and the deletion commit together. The consents app imports no app above it.

A granter ``granter(user) -> dict`` runs inside every granting call (also when the consent
was granted already) and returns keys the API adds to its answer, e.g. the calendars app's
``{"feed_url": ...}``::

    @consent_granter("calendar")
    def feed_on_grant(user) -> dict: ...
"""

from __future__ import annotations

from collections.abc import Callable


class _Hooks:
    """Functions registered per consent kind, in registration order, each once."""

    def __init__(self):
        self._by_kind: dict[str, list[Callable]] = {}

    def register(self, kind: str):
        def register(fn: Callable) -> Callable:
            registered = self._by_kind.setdefault(kind, [])
            if fn not in registered:
                registered.append(fn)
            return fn

        return register

    def of(self, kind: str) -> list[Callable]:
        return list(self._by_kind.get(kind, ()))


_erasers, _granters = _Hooks(), _Hooks()


def consent_eraser(kind: str):
    return _erasers.register(kind)


def erasers(kind: str) -> list[Callable]:
    return _erasers.of(kind)


def consent_granter(kind: str):
    return _granters.register(kind)


def granters(kind: str) -> list[Callable]:
    return _granters.of(kind)
