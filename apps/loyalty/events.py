"""The loyalty app's events (docs/events.md; creatorcommerce/spine/event_schema.py)."""

from creatorcommerce.spine.event_schema import INT, ListOf, Nullable, Obj, declare

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
    ),
)
# -- end moderation (L3) ----------------------------------------------------------------
