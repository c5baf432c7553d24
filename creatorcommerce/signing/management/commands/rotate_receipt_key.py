from django.core.management.base import BaseCommand

from creatorcommerce.signing.services import CURRENT_KEY_TTL, signing_key_rotate


class Command(BaseCommand):
    help = (
        "Retire this node's receipt-signing key and create a new one. The retired key's public "
        "half stays in /.well-known/jwks.json, so receipts it signed still verify."
    )

    def handle(self, *args, **options):
        new, retired = signing_key_rotate()
        self.stdout.write(self.style.SUCCESS(f"current key: {new.kid}"))
        self.stdout.write(f"retired key: {retired.kid if retired else '(none: this node had no key yet)'}")
        # Running servers cache the key they sign with; say so, or the operator wonders why
        # receipts still carry the old kid for a minute.
        self.stdout.write(f"running processes switch to the new key within {CURRENT_KEY_TTL:.0f} s")
