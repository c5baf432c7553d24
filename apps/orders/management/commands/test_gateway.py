"""Switch the bundled TestGateway's outage on and off, to show offline selling
(docs/buying.md, "Offline selling"). Every process of the node sees the switch: it is a
file (``TEST_GATEWAY_DOWN_FILE``), not process memory."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.orders.payments import test_gateway_down


class Command(BaseCommand):
    help = "Make the bundled TestGateway unreachable (down), reachable again (up), or show which (status)."

    def add_arguments(self, parser):
        parser.add_argument("state", choices=["down", "up", "status"])

    def handle(self, *args, state, **options):
        path = settings.TEST_GATEWAY_DOWN_FILE
        if not path:
            raise CommandError("Set TEST_GATEWAY_DOWN_FILE (a file path) to use the test gateway's outage switch.")
        if not settings.PAYMENT_GATEWAY.endswith(".TestGateway"):
            self.stderr.write(f"Note: PAYMENT_GATEWAY is {settings.PAYMENT_GATEWAY}; only the TestGateway obeys this.")
        if state == "down":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).touch()
        elif state == "up":
            Path(path).unlink(missing_ok=True)
        self.stdout.write("unreachable" if test_gateway_down() else "reachable")
