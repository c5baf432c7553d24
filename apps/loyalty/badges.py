"""Writing badge definitions (docs/loyalty.md, "Badges and rules"): ``badge_save`` is the
one way a badge is created or changed (the admin calls it), and ``badge_errors`` says what
is wrong with a badge's fields, per field, so forms show the rules' requirements as field
errors instead of a database constraint's name."""

from __future__ import annotations

from django.db import transaction

from creatorcommerce.errors import DomainError

from .models import Badge, PerkKind

BADGE_FIELDS = (
    "name",
    "icon",
    "description",
    "rule",
    "count",
    "seconds",
    "amount",
    "period_days",
    "stream",
    "needs_review",
    "is_active",
    "perk_kind",
    "perk_percent",
    "perk_minutes",
    "perk_valid_days",
)

# What each rule needs (the model's check constraints, said per field).
_NEEDS = {
    Badge.Rule.FIRST_BUYERS: {"count": "How many first buyers of a drop get it."},
    Badge.Rule.DEAL_SPEED: {"seconds": "Within how many seconds of a deal opening."},
    Badge.Rule.STREAK: {"count": "How many consecutive drops."},
    Badge.Rule.REPEAT: {"count": "How many paid orders."},
    Badge.Rule.SPEND: {"amount": "More than how much.", "period_days": "Over how many days."},
}
# Rules about one drop; the others are about the shop as a whole.
STREAM_RULES = (Badge.Rule.FIRST_BUYERS, Badge.Rule.DEAL_SPEED)


class BadgeInvalid(DomainError):
    code = "invalid"
    message = "The badge is not valid."


def badge_errors(*, shop, fields: dict, badge: Badge | None = None) -> dict[str, list[str]]:
    """What is wrong with ``fields`` for a badge of ``shop`` (``badge``: the one being
    changed), per field."""
    errors: dict[str, list[str]] = {}

    def add(field, message):
        errors.setdefault(field, []).append(message)

    rule = fields.get("rule")
    if rule not in Badge.Rule.values:
        add("rule", "Choose a rule.")
    for field, message in _NEEDS.get(rule, {}).items():
        if fields.get(field) in (None, ""):
            add(field, f"Required for this rule: {message[0].lower()}{message[1:]}")
    amount = fields.get("amount")
    if rule == Badge.Rule.SPEND and amount is not None and amount <= 0:
        add("amount", "The amount must be above 0.")
    stream = fields.get("stream")
    if stream is not None:
        if stream.shop_id != shop.pk:
            add("stream", "Choose one of your own drops.")
        elif rule not in STREAM_RULES:
            add("stream", "Only the first-buyers and deal-speed rules are about one drop; leave it empty.")
    name = (fields.get("name") or "").strip()
    if not name:
        add("name", "Name the badge.")
    elif Badge.objects.filter(shop=shop, name=name).exclude(pk=getattr(badge, "pk", None)).exists():
        add("name", "Your shop has a badge of this name already.")
    if fields.get("icon") is not None and not str(fields["icon"]).strip():
        add("icon", "Give the badge an icon (an emoji or a short symbol).")
    for field, message in perk_errors(fields).items():
        add(field, message)
    return errors


def perk_errors(fields: dict) -> dict[str, str]:
    """What a badge's or a tier's perk fields miss (a perk of that kind needs them)."""
    errors = {}
    kind = fields.get("perk_kind") or ""
    if kind == PerkKind.PERCENT_OFF and fields.get("perk_percent") is None:
        errors["perk_percent"] = "Required for a percent-off perk."
    if kind == PerkKind.EARLY_ACCESS and fields.get("perk_minutes") is None:
        errors["perk_minutes"] = "Required for an early-access perk."
    return errors


def badge_save(*, shop, badge: Badge | None = None, **fields) -> Badge:
    """Create (``badge`` None) or change a badge of ``shop``. Raises BadgeInvalid (with
    ``fields``: field -> messages) and writes nothing when a field is wrong. Changing a rule
    leaves the awards made so far as they are. Emits nothing: no one listens to badge
    definitions; awards have their events (``badge.awarded``)."""
    unknown = set(fields) - set(BADGE_FIELDS)
    if unknown:
        raise TypeError(f"badge_save() got unexpected fields {sorted(unknown)}")
    if badge is not None and badge.pk is not None and badge.shop_id != shop.pk:
        raise BadgeInvalid("This badge is another shop's.")
    current = {name: getattr(badge, name) for name in BADGE_FIELDS} if badge is not None and badge.pk else {}
    merged = {**current, **fields}
    errors = badge_errors(shop=shop, fields=merged, badge=badge)
    if errors:
        raise BadgeInvalid(fields=errors)
    with transaction.atomic():
        if badge is None or badge.pk is None:
            badge = badge or Badge()
            badge.shop = shop
        else:
            badge = Badge.objects.select_for_update().get(pk=badge.pk, shop=shop)
        for name, value in fields.items():
            setattr(badge, name, value.strip() if isinstance(value, str) and name in ("name", "icon") else value)
        badge.save()
    return badge
