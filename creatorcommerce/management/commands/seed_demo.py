from django.core.management.base import BaseCommand

from creatorcommerce.demo import DEMO_PASSWORD, DEMO_USERS, seed


class Command(BaseCommand):
    help = "Create the demo shop, users and live stream (idempotent) and print the demo logins."

    def handle(self, *args, **options):
        context = seed()
        self.stdout.write(self.style.SUCCESS("Demo data is ready."))
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for role, (email, _name) in DEMO_USERS.items():
            self.stdout.write(f"  {role:<8} {email}")
        for line in context.get("summary", []):
            self.stdout.write(f"  {line}")
