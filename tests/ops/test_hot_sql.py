"""The hot path's hand-written statements against the real schema (issue 15, item 8).

Each statement builder is run on the configured database (SQLite here, PostgreSQL in CI)
with representative rows, so a renamed table or column fails here rather than in a buy;
and its text is checked: every quoted identifier is the table or a column of the models
it is built from, no table is named unquoted, and no value - no status above all - is
embedded as a literal (values are parameters). Statements that only exist on PostgreSQL
(the reserve's chained CTE, the confirm with its outbox INSERT) run there; their text is
checked on every database.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.utils import timezone

from apps.accounts.models import Shop, User
from apps.catalog.models import SKU, BuyerAllowance, Location, Product, StockLevel
from apps.catalog.services import allowance_take_statement, stock_take_statement
from apps.loyalty.models import Perk
from apps.orders.models import Address, IdempotencyRecord, Order, OrderLine, PaymentMethod
from apps.orders.selectors import _buy_context_sql
from apps.orders.services import confirm_statement, order_reserve, reserve_statement
from apps.pricing.claims import Claim, claims_chain, claims_results
from apps.pricing.registry import buyer_flags
from apps.streams.models import FlashDeal, Pin, Stream
from apps.streams.pricing import _open_deals_where, _stream_shop_sql, open_deals
from apps.streams.selectors import _pins_sql
from apps.streams.services import deal_open, deal_take_statement, pin_add, stream_start
from creatorcommerce.spine.events import _outbox_row, when_statement
from creatorcommerce.spine.models import OutboxEvent
from creatorcommerce.sql import _select, _select_all, _select_related, _statement, insert_select, names
from tests.factories import make_buyer, make_sku

pytestmark = pytest.mark.django_db

QUOTED = re.compile(r'"([^"]+)"')
# ``alias.column`` with the column unquoted: only names our own statements give (the
# claims' RETURNING aliases, insert_select's VALUES columns), never a table's column.
UNQUOTED_COLUMN = re.compile(r"\b[A-Za-z_]\w*\.([A-Za-z_]\w*)")
OWN_ALIASES = re.compile(r"^(available|version|units|n|c\d+)$")
STATUSES = {
    value
    for choices in (Order.Status, Order.PaymentStatus, FlashDeal.Status, Stream.Status)
    for value in choices.values
}
GATE_OPEN = "WITH gate AS (SELECT 1 AS one) "
GATE_SHUT = "WITH gate AS (SELECT 1 AS one WHERE 1 = 0) "


def assert_from_models(sql: str, *models) -> None:
    """Every identifier ``sql`` quotes is a table or column of ``models``, each model's
    table is named (quoted), no table of any model is named unquoted, and no value is
    embedded as a literal."""
    tables = {m._meta.db_table for m in models}
    allowed = tables | {f.column for m in models for f in m._meta.concrete_fields}
    quoted = set(QUOTED.findall(sql))
    assert quoted <= allowed, f"not from the models: {sorted(quoted - allowed)}\n{sql}"
    assert tables <= quoted, f"tables not named: {sorted(tables - quoted)}\n{sql}"
    for model in apps.get_models():
        table = re.escape(model._meta.db_table)
        assert not re.search(rf'(?<!")\b{table}\b(?!")', sql), f"{model._meta.db_table} unquoted\n{sql}"
    unquoted = [name for name in UNQUOTED_COLUMN.findall(sql) if not OWN_ALIASES.match(name)]
    assert not unquoted, f"columns named unquoted: {unquoted}\n{sql}"
    for status in STATUSES:
        assert f"'{status}'" not in sql, f"status {status!r} embedded\n{sql}"
    assert "'" not in sql, f"a literal is embedded\n{sql}"


def run(sql: str, params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]


def explain(sql: str, params) -> None:
    """Plan ``sql`` without running it: the database resolves every table and column
    (SQLite has no plan to show for an INSERT ... VALUES, but still prepares it)."""
    prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    run(prefix + sql, params)  # raises for an unknown table or column


def postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("this statement is built only for PostgreSQL (a data-modifying CTE)")


def level_of(sku) -> StockLevel:
    return StockLevel.objects.get(sku=sku)


@pytest.fixture
def deal():
    """An open deal: 5 units of a SKU with 30 in stock, 2 per buyer, for an hour."""
    sku = make_sku(stock=30)
    now = timezone.now()
    stream = stream_start(stream=Stream.objects.create(shop=sku.shop, title="Live", starts_at=now))
    planned = FlashDeal.objects.create(
        stream=stream,
        sku=sku,
        price="12.00",
        quantity=5,
        per_buyer_limit=2,
        opens_at=now - timedelta(minutes=1),
        closes_at=now + timedelta(hours=1),
    )
    opened = deal_open(deal=planned, now=now)
    assert opened.status == FlashDeal.Status.OPEN and opened.remaining == 5
    return opened


# -- names() ---------------------------------------------------------------------------------


def test_names_quotes_the_models_table_and_columns():
    n = names(StockLevel)
    quote = connection.ops.quote_name
    assert n.table == quote(StockLevel._meta.db_table)
    assert n.sku == n.sku_id == quote(StockLevel._meta.get_field("sku").column)
    assert n.cast("available") == f"CAST(%s AS {StockLevel._meta.get_field('available').db_type(connection)})"


def test_names_raises_attribute_error_for_an_unknown_field():
    with pytest.raises(AttributeError, match="no_such_column"):
        _ = names(StockLevel).no_such_column
    with pytest.raises(AttributeError, match="no_such_column"):
        names(BuyerAllowance).cast("no_such_column")


# -- units and allowances ----------------------------------------------------------------------


def test_stock_take_statement():
    level = level_of(make_sku(stock=5))
    sql, params = stock_take_statement(level_id=level.pk, quantity=2)
    assert_from_models(sql, StockLevel)
    explain(sql, params)
    assert run(sql, params) == [(3, level.version + 1)]
    assert run(*stock_take_statement(level_id=level.pk, quantity=4)) == []  # only 3 left: refused
    assert StockLevel.objects.values_list("available", "version").get(pk=level.pk) == (3, level.version + 1)


def test_stock_take_statement_after_an_earlier_part():
    level = level_of(make_sku(stock=5))
    sql, params = stock_take_statement(level_id=level.pk, quantity=2, after="gate")
    assert_from_models(sql, StockLevel)
    assert run(GATE_SHUT + sql, params) == []  # the earlier part returned nothing: nothing taken
    assert run(GATE_OPEN + sql, params) == [(3, level.version + 1)]


def test_allowance_take_statement():
    buyer = make_buyer()
    sql, params = allowance_take_statement(buyer_id=buyer.pk, key="sku:1", quantity=2, limit=3)
    assert_from_models(sql, BuyerAllowance)
    explain(sql, params)
    assert run(sql, params) == [(2,)]
    assert run(sql, params) == []  # 4 > 3: refused
    assert run(*allowance_take_statement(buyer_id=buyer.pk, key="sku:1", quantity=1, limit=3)) == [(3,)]
    assert BuyerAllowance.objects.get(buyer=buyer, key="sku:1").units == 3


def test_allowance_take_statement_after_an_earlier_part():
    buyer = make_buyer()
    sql, params = allowance_take_statement(buyer_id=buyer.pk, key="deal:7", quantity=2, limit=3, after="gate")
    assert_from_models(sql, BuyerAllowance)
    for field in ("buyer_id", "key", "units"):  # the casts are the columns' own types
        assert names(BuyerAllowance).cast(field) in sql
    postgresql_only()  # SQLite reads ``FROM gate ON CONFLICT`` as a join
    assert run(GATE_SHUT + sql, params) == []
    assert run(GATE_OPEN + sql, params) == [(2,)]
    assert run(GATE_OPEN + sql, params) == []  # 4 > 3: refused


def test_deal_take_statement(deal):
    now = timezone.now()
    sql, params = deal_take_statement(deal_id=deal.pk, quantity=2, now=now)
    assert_from_models(sql, FlashDeal)
    assert FlashDeal.Status.OPEN in params  # the status is a parameter
    explain(sql, params)
    assert run(sql, params) == [(3, deal.version + 1)]
    assert run(*deal_take_statement(deal_id=deal.pk, quantity=4, now=now)) == []  # 3 left
    assert run(*deal_take_statement(deal_id=deal.pk, quantity=1, now=deal.closes_at + timedelta(seconds=1))) == []
    FlashDeal.objects.filter(pk=deal.pk).update(status=FlashDeal.Status.CLOSED)
    assert run(*deal_take_statement(deal_id=deal.pk, quantity=1, now=now)) == []


def test_deal_take_statement_after_an_earlier_part(deal):
    sql, params = deal_take_statement(deal_id=deal.pk, quantity=2, now=timezone.now(), after="gate")
    assert_from_models(sql, FlashDeal)
    assert run(GATE_SHUT + sql, params) == []
    assert run(GATE_OPEN + sql, params) == [(3, deal.version + 1)]


# -- the buy's read ----------------------------------------------------------------------------


def test_stream_shop_sql():
    sku = make_sku()
    stream = Stream.objects.create(shop=sku.shop, title="Later", starts_at=timezone.now())
    sql = _stream_shop_sql("%s")
    assert_from_models(sql, Stream)
    assert run(f"SELECT ({sql})", [stream.pk]) == [(sku.shop_id,)]
    assert run(f"SELECT ({sql})", [stream.pk + 1000]) == [(None,)]


# -- a stream's reads (every poll of GET /api/v1/streams/<id>/ and every snapshot) -------------


def test_stream_and_shop_statement():
    sku = make_sku()
    stream = Stream.objects.create(shop=sku.shop, title="Later", starts_at=timezone.now())
    sql, _ = _select_related(Stream, ("shop",), "default")
    assert_from_models(sql, Stream, Shop)
    explain(sql, [stream.pk])
    assert [row[0] for row in run(sql, [stream.pk])] == [stream.pk]


@pytest.mark.parametrize("streams", [1, 2])
def test_stream_pins_statement(deal, streams):
    pin_add(stream=deal.stream, sku=deal.sku)
    sql, fields = _pins_sql(streams)
    assert_from_models(sql, Pin, SKU, Product, StockLevel, Location)
    params = [True, deal.stream_id, *[deal.stream_id + 1000] * (streams - 1)]
    explain(sql, params)
    rows = run(sql, params)
    level = StockLevel.objects.get(sku=deal.sku, location__is_default=True)
    assert len(fields) == len(rows[0])
    assert [(r[0], r[1], r[2], r[9], r[10]) for r in rows] == [
        (deal.stream_id, deal.sku_id, deal.sku.code, level.pk, level.available)
    ]


def test_open_deals_statement(deal):
    sql = f"{_select_all(FlashDeal, 'default')} WHERE {_open_deals_where(2, 1)}"
    assert_from_models(sql, FlashDeal)
    params = [deal.stream_id, 0, FlashDeal.Status.OPEN, connection.ops.adapt_datetimefield_value(timezone.now()), 0]
    explain(sql, params)
    assert run(sql, params) == []  # SKU 0
    assert [d.pk for d in open_deals(stream_ids=[deal.stream_id, 0], sku_ids=[deal.sku_id])] == [deal.pk]
    assert open_deals(stream_ids=[deal.stream_id], now=deal.closes_at) == []


# Perk: the loyalty provider's flag about the buyer (apps.pricing.registry.buyer_flag).
BUY_CONTEXT_MODELS = (
    Order,
    IdempotencyRecord,
    User,
    PaymentMethod,
    Address,
    SKU,
    Product,
    Shop,
    Location,
    StockLevel,
    Perk,
)


def _buy_context(codes: list[str], **named) -> list[tuple]:
    sql = _buy_context_sql(len(codes))
    params = {
        "key": "ctx-key-1",
        "shop": None,
        "stream": None,
        "failed": Order.Status.FAILED,
        "venue": None,
        "venue_kind": Location.Kind.VENUE,
        "now": connection.ops.adapt_datetimefield_value(timezone.now()),
        **named,
    }
    for _, flag in buyer_flags():  # the pricing providers' flags' parameters
        params.update(flag("")[1])
    params.update({f"code{i}": code for i, code in enumerate(codes)})
    explain(sql, params)
    return run(sql, params)


@pytest.mark.parametrize("count", [1, 3])
def test_buy_context_sql(count):
    assert_from_models(_buy_context_sql(count), *BUY_CONTEXT_MODELS, Stream)
    buyer = make_buyer()
    first = make_sku(stock=4)
    skus = [first] + [make_sku(first.shop, stock=4) for _ in range(count - 1)]
    rows = _buy_context([s.code for s in skus], buyer=buyer.pk, stream=None, shop=first.shop.slug, key="ctx-key-1")
    # The buyer's state (no earlier order or answer, their payment method and address),
    # then each SKU with its stock row.
    assert rows[0][:4] == (None, None, None, None)
    assert rows[0][4] == PaymentMethod.objects.get(user=buyer).pk
    assert rows[0][6] == Address.objects.get(user=buyer).pk
    assert sorted((row[15], row[23]) for row in rows) == sorted((s.pk, level_of(s).pk) for s in skus)


def test_buy_context_sql_sees_an_earlier_order_and_the_stream_shop():
    buyer, sku = make_buyer(), make_sku()
    stream = Stream.objects.create(shop=sku.shop, title="Later", starts_at=timezone.now())
    order = order_reserve(buyer=buyer, lines=[(sku.code, 1)], idempotency_key="ctx-key-1", fingerprint="fp")
    (row,) = _buy_context([sku.code], buyer=buyer.pk, stream=stream.pk)
    assert row[:3] == (order.pk, Order.Status.RESERVED, "fp")
    assert row[14] == sku.shop_id
    Order.objects.filter(pk=order.pk).update(status=Order.Status.FAILED)  # a failed order is no earlier order
    (row,) = _buy_context([sku.code], buyer=buyer.pk, stream=stream.pk)
    assert row[:3] == (None, None, None)


# -- the reserve (PostgreSQL: one statement) ---------------------------------------------------


def test_claims_chain(deal):
    buyer, level = make_buyer(), level_of(make_sku(deal.sku.shop, stock=5))
    claims = [
        Claim("units", "deal", deal.pk, 2, 0, "DEAL"),
        Claim("units", "stock", level.pk, 1, 1, "PLAIN"),
        Claim("allowance", "allowance", f"deal:{deal.pk}", 2, 0, "DEAL", limit=2),
    ]
    parts, params, last, columns = claims_chain(claims=claims, buyer_id=buyer.pk, now=timezone.now())
    assert last == "claim2"
    assert columns == ["claim0.available", "claim0.version", "claim1.available", "claim1.version", "claim2.units"]
    joins = " ".join(f"LEFT JOIN claim{i} ON true" for i in range(len(claims)))
    sql = f"WITH {', '.join(parts)} SELECT {', '.join(columns)} FROM (SELECT 1) AS one {joins}"
    assert_from_models(sql, FlashDeal, StockLevel, BuyerAllowance)
    postgresql_only()
    values = run(sql, params)[0]
    assert claims_results(claims=claims, values=values, now=timezone.now()) == [
        (3, deal.version + 1),
        (4, level.version + 1),
        (2,),
    ]


def test_claims_chain_takes_nothing_after_a_refusal(deal):
    buyer, level = make_buyer(), level_of(make_sku(deal.sku.shop, stock=5))
    claims = [Claim("units", "deal", deal.pk, 9, 0, "DEAL"), Claim("units", "stock", level.pk, 1, 1, "PLAIN")]
    parts, params, _, columns = claims_chain(claims=claims, buyer_id=buyer.pk, now=timezone.now())
    sql = f"WITH {', '.join(parts)} SELECT {', '.join(columns)} FROM (SELECT 1) AS one "
    sql += "LEFT JOIN claim0 ON true LEFT JOIN claim1 ON true"
    postgresql_only()
    assert run(sql, params) == [(None, None, None, None)]
    assert StockLevel.objects.get(pk=level.pk).available == 5


def _order_and_lines(buyer, sku, level) -> tuple[Order, list[OrderLine]]:
    order = Order(
        buyer=buyer,
        shop_id=sku.shop_id,
        total=Decimal("20.00"),
        currency="USD",
        idempotency_key="reserve-key-1",
        request_fingerprint="f" * 64,
        payment_method_id=PaymentMethod.objects.get(user=buyer).pk,
    )
    line = OrderLine(
        order=order,
        sku_id=sku.pk,
        stock_level_id=level.pk,
        sku_code=sku.code,
        title="A line",
        quantity=2,
        unit_price=Decimal("10.00"),
        adjustments=[],
        total=Decimal("20.00"),
        unit_source="",
        allowance_key="",
    )
    return order, [line]


def test_reserve_statement():
    buyer, sku = make_buyer(), make_sku(stock=5)
    level = level_of(sku)
    claims = [Claim("units", "stock", level.pk, 2, 0, sku.code)]
    order, lines = _order_and_lines(buyer, sku, level)
    sql, params = reserve_statement(buyer_id=buyer.pk, claims=claims, order=order, lines=lines, now=timezone.now())
    assert_from_models(sql, StockLevel, Order, OrderLine)
    postgresql_only()
    (row,) = run(sql, params)
    assert row[:2] == (3, level.version + 1)
    placed = Order.objects.get(pk=row[2])
    assert (placed.status, placed.idempotency_key, placed.total) == (Order.Status.RESERVED, "reserve-key-1", 20)
    assert list(placed.lines.values_list("pk", "quantity")) == [(row[3][0], 2)]


def test_reserve_statement_inserts_nothing_when_a_claim_refuses():
    buyer, sku = make_buyer(), make_sku(stock=1)
    level = level_of(sku)
    claims = [Claim("units", "stock", level.pk, 2, 0, sku.code)]
    order, lines = _order_and_lines(buyer, sku, level)
    sql, params = reserve_statement(buyer_id=buyer.pk, claims=claims, order=order, lines=lines, now=timezone.now())
    postgresql_only()
    assert run(sql, params) == [(None, None, None, None)]
    assert not Order.objects.filter(buyer=buyer).exists()


# -- the confirm, and the spine's outbox statements --------------------------------------------


def _reserved_order() -> Order:
    return order_reserve(buyer=make_buyer(), lines=[(make_sku().code, 1)], idempotency_key="confirm-key-1")


def _confirm(order: Order) -> tuple[str, list]:
    return confirm_statement(order_id=order.pk, authorization="auth_1", receipt="signed", now=timezone.now())


def test_confirm_statement():
    order = _reserved_order()
    sql, params = _confirm(order)
    assert_from_models(sql, Order)
    assert Order.Status.PAID in params and Order.Status.RESERVED in params
    explain(sql, params)
    assert run(sql, params) == [(order.pk,)]
    order.refresh_from_db()
    assert (order.status, order.payment_status, order.payment_reference, order.receipt) == (
        Order.Status.PAID,
        Order.PaymentStatus.AUTHORIZED,
        "auth_1",
        "signed",
    )
    assert order.paid_at is not None
    assert run(*_confirm(order)) == []  # no longer reserved: nothing changes


def test_spine_outbox_statements(settings):
    """The outbox INSERT of ``emit()`` and ``emit_many_when()`` (``creatorcommerce.sql``),
    the load by primary key, and the confirm with its events in one statement."""
    settings.SPINE_CHECK_EVENTS = False
    for model in (OutboxEvent, Order, OrderLine):
        sql, _ = _statement(model, 2, connection.vendor, "default")
        assert_from_models(sql, model)
    sql, _, _ = _select(User, "default")
    assert_from_models(sql, User)
    rows = [_outbox_row("test.confirmed", {"n": n}, ["g"]) for n in range(2)]
    sql, _ = insert_select(rows, source="(SELECT 1 FROM matched LIMIT 1) AS m")
    assert_from_models(sql, OutboxEvent)

    order = _reserved_order()
    sql, params = when_statement(*_confirm(order), rows)
    assert_from_models(sql, Order, OutboxEvent)
    postgresql_only()
    before = OutboxEvent.objects.count()
    with transaction.atomic():
        keys = [row[0] for row in run(sql, params)]
    assert len(keys) == 2 and OutboxEvent.objects.filter(pk__in=keys, type="test.confirmed").count() == 2
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert run(*when_statement(*_confirm(order), rows)) == []  # matched nothing: no outbox rows
    assert OutboxEvent.objects.count() == before + 2


def test_buy_context_sql_reads_a_pickup_venues_rows_and_the_venue():
    from apps.catalog.services import stock_adjust

    buyer, sku = make_buyer(), make_sku(stock=4)
    default = level_of(sku)
    venue = Location.objects.create(shop=sku.shop, name="Pop-up", kind=Location.Kind.VENUE, address="Square 1")
    level = stock_adjust(sku=sku, location=venue, set_to=2)
    (row,) = _buy_context([sku.code], buyer=buyer.pk, venue=venue.pk)
    assert (row[15], row[23]) == (sku.pk, level.pk)
    assert row[24:27] == (sku.shop_id, "Pop-up", "Square 1")
    (row,) = _buy_context([sku.code], buyer=buyer.pk)  # no venue: the default location's row
    assert row[23] == default.pk and row[24:27] == (None, None, None)
