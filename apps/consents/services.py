"""Consent writes (docs/geofences.md, "Consent")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from creatorcommerce.fields import iso_utc
from creatorcommerce.spine.events import emit

from .exceptions import ConsentKindNotFound
from .models import Consent
from .registry import erasers, granters


@dataclass(frozen=True)
class ConsentOutcome:
    consent: Consent
    changed: bool
    deleted: int  # rows the erasers removed (revocations only; 0 otherwise)
    extra: dict  # what the kind's granters return (grants only; the API adds it to its answer)


def consent_set(*, user, kind: str, granted: bool, now: datetime | None = None) -> ConsentOutcome:
    """Grant or revoke ``kind`` for ``user``, in one transaction: the consent row, an audit
    entry, on grant every granter registered for the kind (what they return is ``extra``),
    and on revoke every eraser registered for the kind (their row counts summed).

    Setting a consent to the value it already has changes nothing: no audit entry, no
    event, ``changed_at`` kept. A revoke still runs the erasers (they find nothing to
    delete unless something slipped in), so "revoke" always means "nothing of mine is left".
    """
    if kind not in Consent.Kind.values:
        raise ConsentKindNotFound()
    now = now or timezone.now()
    with transaction.atomic():
        consent, created = Consent.objects.select_for_update().get_or_create(
            user=user, kind=kind, defaults={"granted": granted, "changed_at": now}
        )
        changed = created or consent.granted != granted
        if changed and not created:
            consent.granted = granted
            consent.changed_at = now
            consent.save(update_fields=["granted", "changed_at"])
        deleted = 0
        extra: dict = {}
        if granted:
            for granter in granters(kind):
                extra |= granter(user) or {}
        else:
            deleted = sum(int(eraser(user)) for eraser in erasers(kind))
        if changed or deleted:
            audit_record(
                actor=user,
                action="consent.granted" if granted else "consent.revoked",
                obj=consent,
                details={"kind": kind, "deleted": deleted},
            )
            emit(
                "consent.changed",
                {
                    "user": user.pk,
                    "kind": kind,
                    "granted": granted,
                    "changed_at": iso_utc(consent.changed_at),
                    "deleted": deleted,
                },
                groups=[],
            )
    return ConsentOutcome(consent=consent, changed=changed, deleted=deleted, extra=extra)
