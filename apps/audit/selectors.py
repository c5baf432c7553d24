"""Reads of the audit log."""

from __future__ import annotations

from django.db import models

from .models import AuditEntry


def audit_entries_of(*, obj: models.Model):
    """The entries about ``obj``, newest first."""
    return AuditEntry.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))
