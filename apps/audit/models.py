"""The append-only audit log: who did what to which object, when and why.

Conventions (docs/audit.md): consents, moderation and refunds write an audit entry in the
same transaction as the change they record, through ``audit.services.audit_record``.
Entries are never changed or deleted by the application: ``save()`` on an existing entry,
``delete()``, and the queryset's ``update()`` and ``delete()`` all raise
``AuditEntryImmutable``, and the admin is read-only. (A database role without UPDATE and
DELETE on the table is the stronger guard an operator can add; see docs/audit.md.)
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from .exceptions import AuditEntryImmutable


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditEntryImmutable("audit entries are append-only")

    def delete(self):
        raise AuditEntryImmutable("audit entries are append-only")

    update.queryset_only = True
    delete.queryset_only = True


class AuditEntry(models.Model):
    SHOP_PATH = "shop"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    # SET_NULL keeps the entry when an account is deleted; ``actor_label`` keeps who it was.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=254, help_text="The actor's e-mail at the time")
    action = models.CharField(max_length=64, db_index=True, help_text="noun.past-verb, e.g. order.refunded")
    object_type = models.CharField(max_length=100, help_text="app_label.model, e.g. orders.order")
    object_id = models.CharField(max_length=64, db_index=True)
    # The shop the object belongs to (null for objects of no shop): lets a creator read
    # their own shop's entries.
    shop = models.ForeignKey("accounts.Shop", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ("-at", "-id")
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=("object_type", "object_id"), name="audit_object")]

    def __str__(self):
        return f"{self.action} {self.object_type}:{self.object_id} by {self.actor_label or 'system'}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditEntryImmutable("audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditEntryImmutable("audit entries are append-only")
