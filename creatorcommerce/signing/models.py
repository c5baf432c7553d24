from django.db import models
from django.db.models import Q
from django.utils import timezone


class SigningKey(models.Model):
    """An Ed25519 key this node signs receipts with.

    A node has at most one current key (``retired_at`` is null) and any number of retired
    ones. Retired keys are never deleted: their public halves stay published in the JWKS so
    that every receipt ever issued can still be verified.
    """

    kid = models.CharField(max_length=100, unique=True)
    # settings.NODE_ID of the node that owns the key; set by the services, not defaulted
    # here, so the migration does not freeze one node's id.
    node = models.CharField(max_length=64)
    # The private JWK sits in the database in clear. Encrypting it at rest (or keeping it in
    # a KMS and signing there) is a later step; until then, database backups are as secret
    # as the key, and the admin never shows this field.
    private_jwk = models.JSONField()
    public_jwk = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("node", "-created_at", "-id")
        constraints = [
            # The database, not the services, guarantees a single current key: two processes
            # that both find no key and both create one cannot both commit.
            models.UniqueConstraint(
                fields=("node",),
                condition=Q(retired_at__isnull=True),
                name="signing_one_current_key_per_node",
            ),
        ]

    def __str__(self):
        return self.kid

    @property
    def is_current(self) -> bool:
        return self.retired_at is None
