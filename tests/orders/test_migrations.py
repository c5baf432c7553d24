"""The data migrations of the pricing layer, run forwards and backwards on rows of the old
shape: catalog 0005 (allowances keyed by ``sku:<id>`` / ``deal:<id>`` instead of SKU and
scope) and orders 0006 (lines with adjustments, total, unit_source and allowance_key
instead of a deal and a limit scope). What each must do is its docstring's promise."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.catalog.models import StockLevel
from apps.orders.selectors import order_body
from apps.streams.models import FlashDeal, Stream
from tests.factories import CreatorFactory, make_buyer, make_sku

# Migrations run DDL: no test transaction may wrap them.
pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("catalog", "0004_allowance_scope"), ("orders", "0005_order_refund")]
AFTER = [("catalog", "0005_allowance_key"), ("orders", "0006_line_adjustments")]


def migrate(targets):
    """Migrate to ``targets``; return the models as they are there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()  # what is applied now
    return executor.loader.project_state(targets).apps


@pytest.fixture
def at_the_latest():
    """Whatever a test leaves behind, the database ends fully migrated (the next tests
    need the current schema)."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture
def bought():
    """What the old lines and allowances point at (tables the migrations do not touch): a
    buyer, a deal SKU (20.00, deal at 12.00) in a stream and a plain SKU (5.00)."""
    shop = CreatorFactory().shop
    deal_sku = make_sku(shop, code="TEE", price="20.00", stock=30, per_buyer_limit=9)
    plain_sku = make_sku(shop, code="MUG", price="5.00", stock=10, per_buyer_limit=4)
    free_sku = make_sku(shop, code="CAP", price="7.50", stock=10)
    now = timezone.now()
    stream = Stream.objects.create(shop=shop, title="Before the pricing layer", starts_at=now)
    deal = FlashDeal.objects.create(
        stream=stream,
        sku=deal_sku,
        price=Decimal("12.00"),
        quantity=5,
        per_buyer_limit=2,
        opens_at=now - timedelta(minutes=1),
        closes_at=now + timedelta(hours=1),
    )
    return {
        "buyer": make_buyer(),
        "shop": shop,
        "stream": stream,
        "deal": deal,
        "skus": (deal_sku, plain_sku, free_sku),
    }


def test_old_allowances_and_lines_get_keys_sources_adjustments_and_totals_and_back(bought, at_the_latest):
    buyer, deal = bought["buyer"], bought["deal"]
    deal_sku, plain_sku, free_sku = bought["skus"]
    level = {sku: StockLevel.objects.get(sku=sku).pk for sku in bought["skus"]}

    # -- the old shape ---------------------------------------------------------------------
    old = migrate(BEFORE)
    OldAllowance, OldOrder, OldLine = (
        old.get_model("catalog", "BuyerAllowance"),
        old.get_model("orders", "Order"),
        old.get_model("orders", "OrderLine"),
    )
    OldAllowance.objects.create(buyer_id=buyer.pk, sku_id=plain_sku.pk, scope="", units=3)
    OldAllowance.objects.create(buyer_id=buyer.pk, sku_id=deal_sku.pk, scope=f"deal:{deal.pk}", units=2)
    order = OldOrder.objects.create(
        buyer_id=buyer.pk,
        shop_id=bought["shop"].pk,
        stream_id=bought["stream"].pk,
        status="paid",
        total=Decimal("46.50"),  # 2 x 12.00 (the deal's price) + 3 x 5.00 + 1 x 7.50
        currency="USD",
        idempotency_key="old-order-1",
        request_fingerprint="f" * 64,
    )

    def old_line(sku, quantity, unit_price, **fields):
        return OldLine.objects.create(
            order=order,
            sku_id=sku.pk,
            stock_level_id=level[sku],
            sku_code=sku.code,
            title=f"Product {sku.code}",
            quantity=quantity,
            unit_price=Decimal(unit_price),
            **fields,
        )

    deal_line = old_line(
        deal_sku, 2, "12.00", deal_id=deal.pk, counts_against_limit=True, limit_scope=f"deal:{deal.pk}"
    )
    plain_line = old_line(plain_sku, 3, "5.00", counts_against_limit=True, limit_scope="")
    free_line = old_line(free_sku, 1, "7.50")

    # -- forwards ----------------------------------------------------------------------------
    new = migrate(AFTER)
    Allowance, Line = new.get_model("catalog", "BuyerAllowance"), new.get_model("orders", "OrderLine")
    assert sorted(Allowance.objects.values_list("buyer_id", "key", "units")) == sorted(
        [(buyer.pk, f"sku:{plain_sku.pk}", 3), (buyer.pk, f"deal:{deal.pk}", 2)]
    )
    lines = {ln.pk: ln for ln in Line.objects.all()}
    got = {
        pk: (ln.unit_price, ln.quantity, ln.adjustments, ln.total, ln.unit_source, ln.allowance_key)
        for pk, ln in lines.items()
    }
    assert got == {
        # The deal's price stays the unit price (the list price of the time was never
        # stored); the adjustment names the deal with 0.00; the total is what was charged.
        deal_line.pk: (
            Decimal("12.00"),
            2,
            [{"source": "deal", "id": deal.pk, "label": "Flash deal", "amount": "0.00"}],
            Decimal("24.00"),
            f"deal:{deal.pk}",
            f"deal:{deal.pk}",
        ),
        plain_line.pk: (Decimal("5.00"), 3, [], Decimal("15.00"), "", f"sku:{plain_sku.pk}"),
        free_line.pk: (Decimal("7.50"), 1, [], Decimal("7.50"), "", ""),
    }
    # The current code reads the migrated order as it reads a new one: lines add up to the
    # order's total, nothing shows as a discount (with the later migrations applied: the
    # current model has their columns).
    from apps.orders.models import Order

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    body = order_body(Order.objects.get(pk=order.pk))
    assert (body["subtotal"], body["discount"], body["total"]) == ("46.50", "0.00", "46.50")
    assert sum(Decimal(ln["total"]) for ln in body["lines"]) == Decimal(body["total"])

    # A line of the new shape with a real discount: 2 x 20.00 list, -16.00 by the deal.
    new_line = Line.objects.create(
        order_id=order.pk,
        sku_id=deal_sku.pk,
        stock_level_id=level[deal_sku],
        sku_code=deal_sku.code,
        title="Product TEE",
        quantity=2,
        unit_price=Decimal("20.00"),
        adjustments=[{"source": "deal", "id": deal.pk, "label": "Flash deal", "amount": "-16.00"}],
        total=Decimal("24.00"),
        unit_source=f"deal:{deal.pk}",
        allowance_key=f"sku:{deal_sku.pk}",  # the deal had no limit of its own: the SKU's applied
    )

    # -- backwards ---------------------------------------------------------------------------
    old = migrate(BEFORE)
    OldAllowance, OldLine = old.get_model("catalog", "BuyerAllowance"), old.get_model("orders", "OrderLine")
    # The old shape cannot hold keys without a SKU: the counts are dropped (0005's docstring).
    assert not OldAllowance.objects.exists()
    got = {
        ln.pk: (ln.deal_id, ln.counts_against_limit, ln.limit_scope, ln.unit_price, ln.quantity)
        for ln in OldLine.objects.all()
    }
    assert got == {
        deal_line.pk: (deal.pk, True, f"deal:{deal.pk}", Decimal("12.00"), 2),
        plain_line.pk: (None, True, "", Decimal("5.00"), 3),
        free_line.pk: (None, False, "", Decimal("7.50"), 1),
        # The charged price per unit, as the old lines kept it.
        new_line.pk: (deal.pk, True, "", Decimal("12.00"), 2),
    }
