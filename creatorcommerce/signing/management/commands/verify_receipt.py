import json
import sys

from django.core.management.base import BaseCommand, CommandError

from creatorcommerce.signing.exceptions import InvalidReceipt
from creatorcommerce.signing.selectors import receipt_open


class Command(BaseCommand):
    help = (
        "Verify a receipt token offline against this node's keys (current and retired). Prints "
        "its header and payload as JSON and exits 0; exits 1 with the reason if it does not verify."
    )

    def add_arguments(self, parser):
        parser.add_argument("token", help="the receipt, a JWS compact token; '-' reads it from stdin")

    def handle(self, *args, token, **options):
        if token == "-":
            token = sys.stdin.read()
        try:
            header, payload = receipt_open(token=token.strip(), registered=True)
        except InvalidReceipt as exc:
            raise CommandError(f"{exc.code} ({exc.details.get('reason')}): {exc.message}") from exc
        self.stdout.write(json.dumps({"header": header, "payload": payload}, indent=2, ensure_ascii=False))
