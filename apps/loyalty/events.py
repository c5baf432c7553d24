"""The loyalty app's events and their payloads (docs/events.md; creatorcommerce/spine/event_schema.py)."""

from creatorcommerce.spine.event_schema import DATETIME, INT, STR, ListOf, Nullable, Obj, OneOf, declare

# -- badges awarded (helper L1: rules, awards) -----------------------------------------------

# A badge granted to a viewer (automatically, or approved by staff). ``name``/``icon`` are
# the badge's; ``display_name`` only what the viewer chose to show, or null; ``stream`` the
# drop it was won in, or null. Groups: ``shop.<id>``, and ``stream.<id>`` for a stream's
# award (its viewers see an ``interaction`` of kind ``badge``; docs/streams.md). Pending
# awards emit nothing until they are approved (docs/loyalty.md, "Badges and rules").
declare(
    "badge.awarded",
    Obj(
        award=INT,
        badge=INT,
        shop=INT,
        user=INT,
        stream=Nullable(INT),
        name=STR,
        icon=STR,
        display_name=Nullable(STR),
    ),
)

# -- end of badges awarded -------------------------------------------------------------------

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

# -- moderation (helper L3: apps/loyalty/moderation.py) ---------------------------------
# An award revoked by staff (``moderation.award_revoke``), pending or granted before. No
# reason text: staff write it freely and it may name people; it stays in the audit log,
# which only staff and the shop's creator read. ``withdrawn``: the perks taken back (unused);
# ``kept``: the perks already used, recorded and not clawed back. Approval emits no event of
# its own: it grants the award, and ``badge.awarded`` says so.
declare(
    "badge.revoked",
    Obj(
        award=INT,
        badge=INT,
        shop=INT,
        user=INT,
        stream=Nullable(INT),
        withdrawn=ListOf(INT),
        kept=ListOf(INT),
        held=ListOf(INT),
    ),
)
# -- end moderation (L3) ----------------------------------------------------------------
