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
    # Raw SQL: on the ping path (once per ping) the ORM's query building cost more than the
    # query (bench/pings.py). FOR UPDATE is ignored by SQLite, whose writers are serial anyway.
    from django.db import connection

    from creatorcommerce.sql import names

    n = names(Consent)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(
            # Identifiers from the model's meta (creatorcommerce.sql); values are parameters.
            f"SELECT 1 FROM {n.table} WHERE {n.user_id} = %s AND {n.kind} = %s AND {n.granted}{lock}",  # noqa: S608
            [user.pk, kind],
        )
        return cursor.fetchone() is not None
