"""stub: helper L2 replaces this file

Perks (docs/loyalty.md). Only the signature moderation (helper L3) calls.
"""

from __future__ import annotations

from .models import Perk


def perks_withdraw_for_award(*, award, now) -> tuple[list, list]:
    """stub: helper L2 replaces this file"""
    perks = list(Perk.objects.select_for_update().filter(award=award, withdrawn_at__isnull=True).order_by("pk"))
    withdrawn = [perk for perk in perks if perk.used_at is None]
    used = [perk for perk in perks if perk.used_at is not None]
    for perk in withdrawn:
        perk.withdrawn_at = now
        perk.save(update_fields=["withdrawn_at"])
    return withdrawn, used
