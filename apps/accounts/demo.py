"""The accounts app's demo step: the demo viewer, creator (with the "Demo Studio" shop, which
charges 4.90 for shipping: docs/pricing.md, "Shipping") and staff member, all with one
password (``seed_demo`` prints the logins)."""

from __future__ import annotations

from decimal import Decimal

from allauth.account.models import EmailAddress

from .models import Shop, User
from .services import user_grant_role, user_set_time_zone

DEMO_PASSWORD = "demo-pass-2026"
DEMO_USERS = {
    "viewer": ("viewer@demo.local", "Demo Viewer"),
    "creator": ("creator@demo.local", "Demo Creator"),
    "staff": ("staff@demo.local", "Demo Staff"),
}
# The demo creator schedules in their own zone (not the server's UTC): the admin shows and
# reads their times in it.
DEMO_CREATOR_TIME_ZONE = "Europe/Berlin"
# A flat fee per delivered order, so the demo's free-shipping perk (docs/loyalty.md) waives
# something. Set when the shop is made; a creator's own change in the admin stays.
DEMO_SHIPPING_FEE = Decimal("4.90")


def demo_user(email: str, display_name: str) -> User:
    """A demo login (verified e-mail, the demo password), made once: other apps' demo steps
    use it for the extra people they show (apps/loyalty/demo.py's fans)."""
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=DEMO_PASSWORD, display_name=display_name)
    EmailAddress.objects.get_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
    return user


def seed(context: dict) -> dict:
    users = {role: demo_user(email, name) for role, (email, name) in DEMO_USERS.items()}
    new_shop = not Shop.objects.filter(owner=users["creator"]).exists()
    user_grant_role(email=users["creator"].email, role="creator", shop_name="Demo Studio")
    if new_shop:
        # No service sets a shop's fee (the admin's Shops page saves the model), and no event
        # announces it: the shop's own row, as the admin would write it.
        Shop.objects.filter(owner=users["creator"]).update(shipping_fee=DEMO_SHIPPING_FEE)
    user_grant_role(email=users["staff"].email, role="staff")
    user_set_time_zone(user=users["creator"], time_zone=DEMO_CREATOR_TIME_ZONE)
    return {"users": {role: User.objects.get(pk=u.pk) for role, u in users.items()}}
