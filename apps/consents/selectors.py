from __future__ import annotations

from .models import Consent


def consent_granted(*, user, kind: str) -> bool:
    """Whether ``user`` has granted consent ``kind`` now (one indexed look-up)."""
    if not getattr(user, "pk", None):
        return False
    return Consent.objects.filter(user_id=user.pk, kind=kind, granted=True).exists()


def consents_of(*, user) -> list[dict]:
    """Every consent kind with the user's answer: ``granted`` false and ``changed_at`` None
    for a kind never set."""
    rows = {c.kind: c for c in Consent.objects.filter(user_id=user.pk)}
    out = []
    for kind in Consent.Kind.values:
        row = rows.get(kind)
        out.append({"kind": kind, "granted": bool(row and row.granted), "changed_at": row.changed_at if row else None})
    return out


def consent_granted_locked(*, user, kind: str) -> bool:
    """Like ``consent_granted``, locking the consent row until the caller's transaction
    ends: a revocation (``consent_set`` locks the same row) then waits for the caller's
    writes and erases them, or the caller reads the revocation. Inside ``atomic()`` only."""
    return (
        Consent.objects.select_for_update()
        .filter(user_id=user.pk, kind=kind, granted=True)
        .values_list("pk", flat=True)
        .first()
        is not None
    )
