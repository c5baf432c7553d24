"""The loyalty app's events and their payloads (docs/events.md; creatorcommerce/spine/event_schema.py)."""

from creatorcommerce.spine.event_schema import DATETIME, INT, Nullable, Obj, OneOf, declare

# -- perks (docs/loyalty.md, "Perks and tiers"; apps/loyalty/perks.py, pricing.py, tiers.py) --
# Groups: ``shop.<shop>`` (the creator's tools). A perk comes from an award or a tier
# (exactly one of ``award`` and ``tier`` is an id).

# A perk granted (``perks_grant_for_award``; a tier reached, ``tiers.tier_perks_grant``).
declare(
    "perk.granted",
    Obj(
        perk=INT,
        user=INT,
        shop=INT,
        kind=OneOf("free_shipping", "percent_off", "early_access"),
        award=Nullable(INT),
        tier=Nullable(INT),
        expires_at=Nullable(DATETIME),
    ),
)
# An unused perk withdrawn: its award was revoked, or its tier is no longer reached.
declare("perk.withdrawn", Obj(perk=INT, user=INT, shop=INT, award=Nullable(INT), tier=Nullable(INT)))
# A perk applied to a paid order (the ``order.placed`` handler, ``pricing.perk_redeemed``).
declare("perk.used", Obj(perk=INT, user=INT, shop=INT, order=INT))
# The reservation that took a perk was released (declined, failed, expired): usable again.
declare("perk.returned", Obj(perk=INT, user=INT, shop=INT))
# -- end of perks --
