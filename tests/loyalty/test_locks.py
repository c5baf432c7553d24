"""Row locks of a grant (review of issue 17): granting an award locks the award, not its
shop or its viewer. Django's ``select_for_update().select_related(...)`` without ``of``
locks every joined row ``FOR UPDATE``; the shop's row then blocks every order, award and
perk insert of the shop (their foreign keys take ``FOR KEY SHARE``) until the badge
handler commits, and two handlers that each inserted a row of the shop first deadlock."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.db.utils import OperationalError

from apps.loyalty.awards import award_grant
from apps.loyalty.models import Award
from tests.factories import make_buyer, make_sku

from .perk_helpers import make_award, make_badge

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _key_share_nowait(table: str, pk: int) -> str:
    """From another connection: take ``FOR KEY SHARE NOWAIT`` on a row (what a foreign key
    check of an insert takes); 'ok' or the error's name."""
    outcome = {}

    def run():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR KEY SHARE NOWAIT", [pk])
            outcome["value"] = "ok"
        except OperationalError as exc:
            outcome["value"] = type(exc.__cause__ or exc).__name__
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    return outcome["value"]


def test_granting_an_award_does_not_lock_the_shop_or_the_viewer():
    viewer, sku = make_buyer(), make_sku(price="20.00")
    badge = make_badge(sku.shop, needs_review=True)
    award = make_award(badge, viewer, status=Award.Status.PENDING)
    with transaction.atomic():
        award_grant(award=award, actor=None)
        # While the grant's transaction is open, the shop's buys and the viewer's rows are free.
        assert _key_share_nowait("accounts_shop", sku.shop_id) == "ok"
        assert _key_share_nowait("accounts_user", viewer.pk) == "ok"
        assert _key_share_nowait("loyalty_badge", badge.pk) == "ok"


ROUNDS = 8


def test_a_revoke_racing_a_buy_that_uses_its_perk():
    """Each round: a viewer with one award perk buys while staff revoke the award, at once.
    Whoever wins, the outcome is consistent and nothing deadlocks or 500s: the buy got the
    perk (it is used, and the revoke kept it and recorded it) or it did not (the perk is
    withdrawn; the buy is refused with perk_withdrawn or bought at full price)."""
    from datetime import timedelta
    from decimal import Decimal

    from apps.audit.models import AuditEntry
    from apps.loyalty.models import Perk
    from apps.loyalty.moderation import award_revoke
    from tests.factories import StaffFactory
    from tests.helpers import run_concurrently

    from .perk_helpers import T0, buy, grant_perk

    sku = make_sku(price="10.00", stock=100)
    staff = StaffFactory()
    now = T0 + timedelta(minutes=1)
    won = {"buy": 0, "revoke": 0}
    for _ in range(ROUNDS):
        viewer = make_buyer()
        award, perk = grant_perk(make_badge(sku.shop, percent="10.00"), viewer)

        def act(what, viewer=viewer, award=award):
            if what == "buy":
                return buy(viewer, [(sku.code, 1)], now=now)
            return award_revoke(award=award, actor=staff, reason="Rule misfired", now=now)

        (status, body), revoked = run_concurrently(act, [("buy",), ("revoke",)], workers=2)
        assert revoked.status == "revoked"
        perk = Perk.objects.get(pk=perk.pk)
        entry = AuditEntry.objects.get(action="badge.revoked", object_id=str(award.pk))
        if perk.used_at is not None:  # the buy took it first: kept, recorded
            won["buy"] += 1
            assert (status, Decimal(body["total"]), perk.withdrawn_at) == (201, Decimal("9.00"), None), body
            # Kept if the order was paid when the revoke looked; held if still reserved (then paid).
            details = entry.details
            assert [p["perk"] for p in details["used_perks_kept"] + details["perks_held_by_reservation"]] == [perk.pk]
        else:  # the revoke first: withdrawn, and the buy did not get it
            won["revoke"] += 1
            assert perk.withdrawn_at is not None and entry.details["withdrawn_perks"] == [perk.pk]
            assert (status == 409 and body["code"] == "perk_withdrawn") or (
                status == 201 and body["total"] == "10.00"
            ), body
    print(f"\nrevoke vs buy, {ROUNDS} rounds: {won}")
