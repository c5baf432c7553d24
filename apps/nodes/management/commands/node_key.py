import json

from django.core.management.base import BaseCommand

from creatorcommerce.signing.selectors import jwks_public
from creatorcommerce.signing.services import signing_key_current


class Command(BaseCommand):
    help = (
        "Print this node's public node key as a JWK (JSON), creating it on first use. The node key "
        "is the node's current receipt-signing key; give the file to the cloud's `node_add` (docs/edge.md)."
    )

    def handle(self, *args, **options):
        current = signing_key_current()
        public = next(key for key in jwks_public()["keys"] if key["kid"] == current.kid)
        self.stdout.write(json.dumps(public))
