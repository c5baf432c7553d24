"""Awarding badges: the one way an award is created and granted (docs/loyalty.md, "Badges
and rules"). The rules (``rules.py``) call ``award_create``; staff approval (moderation)
calls ``award_grant`` on a pending award."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from creatorcommerce.errors import Conflict
from creatorcommerce.spine.events import emit

from .models import Award, Badge, Tier
from .perks import perks_grant_for_award
from .tiers import tier_perks_grant


class AwardNotPending(Conflict):
    """Only a pending award can be granted (a granted one stays as it is; a revoked one is
    never granted again)."""

    code = "award_not_pending"
    message = "This award is not pending."


def award_create(*, badge: Badge, user, scope: str, stream_id: int | None, now=None) -> tuple[Award, bool]:
    """Award ``badge`` to ``user`` in ``scope`` ("" for the shop, ``stream:<id>``,
    ``deal:<id>``) unless it is awarded there already, in any status; returns the award and
    whether it was created now.

    Once per badge, viewer and scope, whoever calls at the same time: the unique constraint
    (badge, user, scope) decides, and a second caller gets the first one's award (Django's
    get_or_create inserts in a savepoint and reads the winner's row after a conflict). A badge
    that ``needs_review`` leaves the award ``pending`` (nothing is shown, no perk, until staff
    approve it); any other is granted at once (``award_grant``). Runs in one transaction."""
    now = now or timezone.now()
    with transaction.atomic():
        award, created = Award.objects.get_or_create(
            badge=badge,
            user=user,
            scope=scope,
            defaults={"status": Award.Status.PENDING, "stream_id": stream_id, "awarded_at": now},
        )
        if created:
            award.badge = badge
            if not badge.needs_review:
                award = award_grant(award=award, actor=None, now=now)
    return award, created


def award_grant(*, award: Award, actor=None, now=None) -> Award:
    """Grant a pending ``award``: automatically (``actor`` None, from the rules) or approved
    by staff (``actor``: ``decided_by``/``decided_at`` say who and when). Grants the perk
    its badge carries (``perks_grant_for_award``) and the perk of every tier the badge now
    lets the viewer reach (a tier that ``requires_badge`` it, the spend being there already:
    ``tiers.tier_perks_grant``, once per viewer and tier; without it the tier's perk waited
    for the viewer's next order), writes the audit entry (``badge.granted``, actor None, for
    an automatic grant; ``badge.approved`` for an approval) and emits ``badge.awarded`` to
    the shop and, for an award won in a stream, to the stream's viewers, all in one
    transaction. Raises AwardNotPending for an award that is granted or revoked already."""
    now = now or timezone.now()
    with transaction.atomic():
        # ``of=("self",)``: lock the award only. Without it the joined badge, shop and user rows
        # are locked FOR UPDATE too, which blocks every order/award/perk insert of the shop
        # (their foreign keys take FOR KEY SHARE) and deadlocks concurrent badge handlers.
        award = Award.objects.select_for_update(of=("self",)).select_related("badge__shop", "user").get(pk=award.pk)
        if award.status != Award.Status.PENDING:
            raise AwardNotPending()
        award.status = Award.Status.GRANTED
        fields = ["status"]
        if actor is not None:
            award.decided_at, award.decided_by = now, actor
            fields += ["decided_at", "decided_by"]
        award.save(update_fields=fields)
        perks = perks_grant_for_award(award=award, now=now)
        badge = award.badge
        if Tier.objects.filter(requires_badge=badge).exists():
            perks += tier_perks_grant(user_id=award.user_id, shop=badge.shop, now=now)
        # One entry per decision: ``badge.granted`` for an automatic grant, ``badge.approved``
        # for a staff approval (moderation.awards_approve writes none of its own).
        audit_record(
            actor=actor,
            action="badge.approved" if actor is not None else "badge.granted",
            obj=award,
            shop=badge.shop,
            details={
                "badge": badge.pk,
                "badge_name": badge.name,
                "user": award.user_id,
                "scope": award.scope,
                "stream": award.stream_id,
                "approved": actor is not None,
                "perks": [getattr(perk, "pk", perk) for perk in perks],
            },
        )
        emit("badge.awarded", badge_awarded_payload(award), groups=badge_awarded_groups(award))
    return award


def badge_awarded_payload(award: Award) -> dict:
    """``badge.awarded``: the badge's name and icon, and of the viewer only the display name
    they chose to show (or null)."""
    return {
        "award": award.pk,
        "badge": award.badge_id,
        "shop": award.badge.shop_id,
        "user": award.user_id,
        "stream": award.stream_id,
        "name": award.badge.name,
        "icon": award.badge.icon,
        "display_name": award.user.display_name or None,
    }


def badge_awarded_groups(award: Award) -> list[str]:
    return [f"shop.{award.badge.shop_id}"] + ([f"stream.{award.stream_id}"] if award.stream_id else [])


def awards_granted_of_user(*, user):
    """The viewer's granted awards, newest first, with their badges (a read: ``GET
    /api/v1/me/badges/``)."""
    return (
        Award.objects.filter(user=user, status=Award.Status.GRANTED)
        .select_related("badge")
        .order_by("-awarded_at", "-pk")
    )


def award_body(award: Award) -> dict:
    return {
        "id": award.pk,
        "badge": {"id": award.badge_id, "name": award.badge.name, "icon": award.badge.icon},
        "awarded_at": award.awarded_at,
    }
