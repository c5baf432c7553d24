"""Writes to accounts: roles, shops and a user's own settings."""

from __future__ import annotations

from django.db import transaction

from creatorcommerce.spine.events import emit

from .exceptions import InvalidTimeZone, UnknownRole, UnknownUser
from .models import Shop, User, time_zone_names

ROLES = ("creator", "staff")


@transaction.atomic
def user_grant_role(*, email: str, role: str, shop_name: str | None = None) -> User:
    """Give ``role`` to the user with ``email``. ``creator`` also creates their shop.

    Idempotent: granting a role the user already has changes nothing and emits nothing.
    """
    if role not in ROLES:
        raise UnknownRole()
    user = User.objects.select_for_update().filter(email__iexact=email.strip()).first()
    if user is None:
        raise UnknownUser()
    changed = False
    if role == "creator":
        if not user.is_creator:
            user.is_creator = True
            user.save(update_fields=["is_creator"])
            changed = True
        if not Shop.objects.filter(owner=user).exists():
            name = shop_name or f"{user.display_name or user.email.split('@')[0]}'s shop"
            Shop.objects.create(owner=user, name=name, slug=Shop.unique_slug(name))
            changed = True
    elif role == "staff" and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
        changed = True
    if changed:
        emit("role.granted", {"user": user.pk, "role": role})
    return user


@transaction.atomic
def user_revoke_role(*, email: str, role: str) -> User:
    """Take ``role`` away. A former creator's shop stays (orders refer to it) but they can no
    longer manage it."""
    if role not in ROLES:
        raise UnknownRole()
    user = User.objects.select_for_update().filter(email__iexact=email.strip()).first()
    if user is None:
        raise UnknownUser()
    field = "is_creator" if role == "creator" else "is_staff"
    if getattr(user, field):
        setattr(user, field, False)
        user.save(update_fields=[field])
        emit("role.revoked", {"user": user.pk, "role": role})
    return user


def user_set_time_zone(*, user: User, time_zone: str) -> User:
    """Set the IANA time zone the user's pages and admin show and read times in
    (apps/accounts/middleware.py). Raises InvalidTimeZone for a name zoneinfo does not know."""
    if time_zone not in time_zone_names():
        raise InvalidTimeZone()
    if user.time_zone != time_zone:
        user.time_zone = time_zone
        user.save(update_fields=["time_zone"])
    return user


@transaction.atomic
def shop_mirror(*, slug: str, name: str, currency: str, shipping_fee, owner_email: str) -> Shop:
    """On an edge node: the cloud's shop ``slug`` as the catalog pull describes it
    (docs/edge.md, "Catalog to the edge"), created with its creator (known by e-mail, no
    password here) if missing, its name, currency and shipping fee kept equal to the
    cloud's. Idempotent: an unchanged shop is not written."""
    shop = Shop.objects.select_for_update().filter(slug=slug).first()
    if shop is None:
        owner = User.objects.filter(email__iexact=owner_email).first()
        if owner is None:
            owner = User.objects.create_user(email=owner_email, password=None)
        if not owner.is_creator:
            owner.is_creator = True
            owner.save(update_fields=["is_creator"])
        return Shop.objects.create(owner=owner, slug=slug, name=name, currency=currency, shipping_fee=shipping_fee)
    wanted = {"name": name, "currency": currency, "shipping_fee": shipping_fee}
    changed = [field for field, value in wanted.items() if getattr(shop, field) != value]
    if changed:
        for field in changed:
            setattr(shop, field, wanted[field])
        shop.save(update_fields=changed)
    return shop
