"""stub: helper L1 replaces this file

Awarding badges (docs/loyalty.md). Only the signatures moderation (helper L3) calls, with
the least behaviour its tests need: the real module grants perks, emits ``badge.awarded``
and pops the badge on screen.
"""

from __future__ import annotations

from django.db import transaction

from apps.audit.services import audit_record

from .models import Award, Perk


def award_create(*, badge, user, scope, stream_id, now):
    """stub: helper L1 replaces this file"""
    status = Award.Status.PENDING if badge.needs_review else Award.Status.GRANTED
    with transaction.atomic():
        award, created = Award.objects.get_or_create(
            badge=badge,
            user=user,
            scope=scope,
            defaults={"status": Award.Status.PENDING, "stream_id": stream_id, "awarded_at": now},
        )
        if created and status == Award.Status.GRANTED:
            award_grant(award=award, now=now)
    return award


def award_grant(*, award, actor=None, now):
    """stub: helper L1 replaces this file"""
    with transaction.atomic():
        award = Award.objects.select_for_update().select_related("badge").get(pk=award.pk)
        award.status = Award.Status.GRANTED
        if actor is not None:
            award.decided_by, award.decided_at = actor, now
        award.save(update_fields=["status", "decided_by", "decided_at"])
        badge = award.badge
        if badge.perk_kind:
            Perk.objects.get_or_create(
                award=award,
                defaults={
                    "user_id": award.user_id,
                    "shop_id": badge.shop_id,
                    "kind": badge.perk_kind,
                    "percent": badge.perk_percent,
                    "minutes": badge.perk_minutes,
                    "granted_at": now,
                },
            )
        audit_record(actor=actor, action="badge.awarded", obj=award, shop=badge.shop)
    return award
