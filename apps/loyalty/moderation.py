"""Staff moderation of awards: approve a pending award, revoke one with a reason, one at a
time or a selection at once (docs/loyalty.md, "Staff moderation").

Only active staff moderate: a creator reads their shop's awards and the audit log but does
not judge their own badges, and a viewer does nothing here (403 ``permission_denied``).
Each call is one transaction: the award, its perks, the tier check, the event and the audit
entry commit together or not at all; a bulk call is all-or-nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from creatorcommerce.admin import is_staff
from creatorcommerce.errors import Conflict, DomainError, PermissionDenied
from creatorcommerce.spine.events import emit

from .awards import award_grant
from .models import Award
from .perks import perk_held_by, perks_withdraw_for_award
from .tiers import tier_recheck

REASON_MAX_LENGTH = 500


class ModerationNotAllowed(PermissionDenied):
    code = "permission_denied"
    message = "Only staff moderate awards."


class ReasonRequired(DomainError):
    code = "reason_required"
    message = "Say why the award is revoked; the reason is kept in the audit log."


class ReasonTooLong(DomainError):
    code = "reason_too_long"
    message = f"The reason is longer than {REASON_MAX_LENGTH} characters."


class AwardNotPending(Conflict):
    code = "award_not_pending"
    message = "Only a pending award can be approved."


def moderation_allowed(user) -> bool:
    """Who moderates awards: active staff (creators read their shop's awards, nobody else)."""
    return bool(user is not None and getattr(user, "is_authenticated", False) and is_staff(user))


def _check_actor(actor) -> None:
    if not moderation_allowed(actor):
        raise ModerationNotAllowed()


def _clean_reason(reason) -> str:
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise ReasonRequired()
    if len(reason) > REASON_MAX_LENGTH:
        raise ReasonTooLong()
    return reason


def _locked(awards: Iterable[Award]) -> list[Award]:
    """The awards again, locked, in id order (a fixed lock order: two bulk calls over
    overlapping selections wait for each other instead of deadlocking)."""
    ids = sorted({award.pk for award in awards})
    return list(Award.objects.select_for_update().filter(pk__in=ids).order_by("pk"))


# -- approve ---------------------------------------------------------------------------------


def award_approve(*, award: Award, actor, now=None) -> Award:
    """Approve a pending award on behalf of ``actor`` (staff): it is granted
    (``awards.award_grant``: its perks, ``badge.awarded``, the pop on screen) and the
    approval is written to the audit log. Raises ModerationNotAllowed (403) and
    AwardNotPending (409: granted already, or revoked)."""
    return awards_approve(awards=[award], actor=actor, now=now)[0]


def awards_approve(*, awards: Iterable[Award], actor, now=None) -> list[Award]:
    """Approve every award of ``awards``, all or nothing: one that is not pending refuses
    the whole call (409 ``award_not_pending``, with its ids) and nothing is written."""
    _check_actor(actor)
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(awards)
        not_pending = [a.pk for a in locked if a.status != Award.Status.PENDING]
        if not_pending:
            raise AwardNotPending(
                f"Only pending awards can be approved; not pending: {', '.join(map(str, not_pending))}.",
                awards=not_pending,
            )
        done = []
        for award in locked:
            # award_grant records who decided (decided_by/decided_at) and writes the one
            # audit entry of the approval (``badge.approved``, with the perks it granted).
            award = award_grant(award=award, actor=actor, now=now)
            done.append(award)
    return done


# -- revoke ----------------------------------------------------------------------------------


def award_revoke(*, award: Award, actor, reason: str, now=None) -> Award:
    """Revoke an award (pending or granted) on behalf of ``actor`` (staff), with a
    ``reason`` (required: ReasonRequired, 400 ``reason_required``).

    In one transaction: the award becomes ``revoked`` with who, when and why; the perks it
    granted that are not used yet are withdrawn, the used ones kept and recorded
    (``perks.perks_withdraw_for_award``); the viewer's tier in the shop is checked again
    (``tiers.tier_recheck``: a tier that needed the badge is lost); ``badge.revoked`` is
    emitted; the audit log gets the reason and the perk ids. Revoking a revoked award
    changes nothing (its first reason stays)."""
    return awards_revoke(awards=[award], actor=actor, reason=reason, now=now)[0]


def awards_revoke(*, awards: Iterable[Award], actor, reason: str, now=None) -> list[Award]:
    """Revoke every award of ``awards`` with one ``reason``, all or nothing (a drop where a
    rule misfired). Awards revoked already are left as they are."""
    _check_actor(actor)
    reason = _clean_reason(reason)
    now = now or timezone.now()
    with transaction.atomic():
        done = []
        for award in _locked(awards):
            if award.status != Award.Status.REVOKED:
                award = _revoke_one(award=award, actor=actor, reason=reason, now=now)
            done.append(award)
    return done


def _revoke_one(*, award: Award, actor, reason: str, now) -> Award:
    award = Award.objects.select_related("badge__shop", "user").get(pk=award.pk)
    was = award.status
    award.status, award.decided_by, award.decided_at, award.reason = Award.Status.REVOKED, actor, now, reason
    award.save(update_fields=["status", "decided_by", "decided_at", "reason"])
    withdrawn, used = perks_withdraw_for_award(award=award, now=now)
    # A perk a reservation holds (not paid yet) is not "kept": if the reservation is paid it
    # is used, if it is released the release withdraws it (with its own audit entry).
    held = {perk.pk: order for perk in used if (order := perk_held_by(perk)) is not None}
    kept = [perk for perk in used if perk.pk not in held]
    shop = award.badge.shop
    tier_recheck(user=award.user, shop=shop, now=now)
    withdrawn_ids = sorted(perk.pk for perk in withdrawn)
    emit(
        "badge.revoked",
        {
            "award": award.pk,
            "badge": award.badge_id,
            "shop": shop.pk,
            "user": award.user_id,
            "stream": award.stream_id,
            "withdrawn": withdrawn_ids,
            "kept": sorted(perk.pk for perk in kept),
            "held": sorted(held),
        },
        groups=[f"shop.{shop.pk}"],
    )
    audit_record(
        actor=actor,
        action="badge.revoked",
        obj=award,
        shop=shop,
        reason=reason,
        details={
            "badge": award.badge_id,
            "badge_name": award.badge.name,
            "user": award.user_id,
            "was": was,
            "withdrawn_perks": withdrawn_ids,
            "used_perks_kept": [
                {"perk": perk.pk, "kind": perk.kind, "used_at": perk.used_at.isoformat(), "order": perk.order_id}
                for perk in sorted(kept, key=lambda p: p.pk)
            ],
            "perks_held_by_reservation": [
                {"perk": perk.pk, "kind": perk.kind, "order": held[perk.pk]}
                for perk in sorted(used, key=lambda p: p.pk)
                if perk.pk in held
            ],
        },
    )
    return award
