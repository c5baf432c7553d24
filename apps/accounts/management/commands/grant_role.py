from django.core.management.base import BaseCommand, CommandError

from apps.accounts.services import ROLES, user_grant_role
from creatorcommerce.errors import DomainError


class Command(BaseCommand):
    help = "Grant a role to a user: creator (also creates their shop) or staff."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("role", choices=ROLES)
        parser.add_argument("--shop-name", help="name of the shop created with the creator role")

    def handle(self, *args, email, role, shop_name=None, **options):
        try:
            user = user_grant_role(email=email, role=role, shop_name=shop_name)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        shop = f" (shop: {user.shop.name})" if role == "creator" else ""
        self.stdout.write(self.style.SUCCESS(f"{user.email} is now {role}{shop}; roles: {', '.join(user.roles)}"))
