"""Demo data, for ``seed_demo``: idempotent, so running it twice duplicates nothing.

Each app that has something to show adds a step to ``STEPS`` (accounts here; catalog and
streams add theirs).
"""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.db import transaction

from apps.accounts.models import User
from apps.accounts.services import user_grant_role

DEMO_PASSWORD = "demo-pass-2026"
DEMO_USERS = {
    "viewer": ("viewer@demo.local", "Demo Viewer"),
    "creator": ("creator@demo.local", "Demo Creator"),
    "staff": ("staff@demo.local", "Demo Staff"),
}


def _user(email: str, display_name: str) -> User:
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=DEMO_PASSWORD, display_name=display_name)
    EmailAddress.objects.get_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
    return user


def seed_accounts(context: dict) -> dict:
    users = {role: _user(email, name) for role, (email, name) in DEMO_USERS.items()}
    user_grant_role(email=users["creator"].email, role="creator", shop_name="Demo Studio")
    user_grant_role(email=users["staff"].email, role="staff")
    return {"users": {role: User.objects.get(pk=u.pk) for role, u in users.items()}}


STEPS = [seed_accounts]


@transaction.atomic
def seed() -> dict:
    context: dict = {}
    for step in STEPS:
        context.update(step(context))
    return context
