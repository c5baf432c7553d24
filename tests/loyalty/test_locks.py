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
