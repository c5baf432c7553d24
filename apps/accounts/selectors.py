from __future__ import annotations

from .models import Shop, User


def user_profile(*, user: User) -> dict:
    shop = Shop.objects.filter(owner=user).first() if user.is_creator else None
    return {
        "id": user.pk,
        "email": user.email,
        "display_name": user.display_name,
        "roles": user.roles,
        "time_zone": user.time_zone,
        "shop": {"id": shop.pk, "name": shop.name, "slug": shop.slug, "currency": shop.currency} if shop else None,
    }
