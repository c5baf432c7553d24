"""The one way to write the audit log."""

from __future__ import annotations

from django.db import models, transaction

from .models import AuditEntry


def audit_record(
    *, actor, action: str, obj: models.Model, reason: str = "", details: dict | None = None, shop=None
) -> AuditEntry:
    """Append an entry recording that ``actor`` did ``action`` to ``obj``.

    Precondition: inside the ``transaction.atomic()`` that makes the change it records, so
    the entry and the change commit or roll back together (raises otherwise).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=getattr(actor, "email", "") or "",
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        shop=shop,
        reason=reason,
        details=details or {},
    )
