"""A user's consents (docs/geofences.md, "Consent"): explicit, reversible, audited.

One row per user and kind, written only by ``services.consent_set``. A kind never set has
no row (the API answers ``granted: false, changed_at: null``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Consent(models.Model):
    class Kind(models.TextChoices):
        LOCATION = "location", "Location"
        CALENDAR = "calendar", "Calendar"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="consents")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    granted = models.BooleanField(default=False)
    changed_at = models.DateTimeField()

    class Meta:
        ordering = ("user", "kind")
        constraints = [models.UniqueConstraint(fields=("user", "kind"), name="consents_one_per_user_kind")]

    def __str__(self):
        return f"{self.user_id} {self.kind} {'granted' if self.granted else 'revoked'}"
