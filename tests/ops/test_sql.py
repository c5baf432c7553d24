"""creatorcommerce.sql: the hot path's INSERT and load-by-pk must store and load exactly
what the ORM does, on SQLite and on PostgreSQL (the suite runs on whichever is configured;
CI runs it on PostgreSQL)."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models.signals import post_save, pre_save
from django.test import Client
from django.utils import timezone

from apps.accounts.models import Shop, User
from apps.catalog.models import SKU
from apps.orders.models import Order, OrderLine
from apps.streams.models import FlashDeal, Stream
from creatorcommerce.spine.models import OutboxEvent
from creatorcommerce.sql import (
    insert,
    insert_new,
    names,
    prep_value,
    row_by_pk,
    rows_matching,
    rows_where,
    select_values,
)
from tests.factories import PASSWORD, UserFactory, make_buyer, make_sku

pytestmark = pytest.mark.django_db


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def _order(buyer, sku, key: str, **extra) -> Order:
    return Order(
        buyer=buyer,
        shop_id=sku.shop_id,
        total=Decimal("12.50"),
        currency="EUR",
        idempotency_key=key,
        request_fingerprint="f" * 64,
        **extra,
    )


def test_insert_stores_what_the_orm_stores():
    buyer, sku = make_buyer(), make_sku()
    fast = insert([_order(buyer, sku, "fast-key-1")])[0]
    slow = _order(buyer, sku, "slow-key-1")
    slow.save()

    assert fast.pk is not None and fast.pk != slow.pk
    assert fast._state.adding is False
    loaded_fast, loaded_slow = Order.objects.get(pk=fast.pk), Order.objects.get(pk=slow.pk)
    differ = {"id", "idempotency_key", "created_at"}
    assert {k: v for k, v in _fields(loaded_fast).items() if k not in differ} == {
        k: v for k, v in _fields(loaded_slow).items() if k not in differ
    }
    # defaults and auto_now_add applied as the ORM applies them
    assert loaded_fast.status == Order.Status.RESERVED
    assert loaded_fast.payment_status == Order.PaymentStatus.NONE
    assert loaded_fast.created_at is not None and loaded_fast.created_at.tzinfo is not None
    assert loaded_fast.created_at == fast.created_at
    assert loaded_fast.total == Decimal("12.50")


def test_insert_of_several_rows_sets_each_key_in_order():
    rows = [
        OutboxEvent(type="thing.happened", payload={"n": n, "price": "1.50"}, groups=[f"g{n}"], node="t")
        for n in range(3)
    ]
    insert(rows)
    assert len({r.pk for r in rows}) == 3
    for n, row in enumerate(rows):
        stored = OutboxEvent.objects.get(pk=row.pk)
        assert stored.payload == {"n": n, "price": "1.50"}
        assert stored.groups == [f"g{n}"]
        assert isinstance(stored.uuid, uuid.UUID) and stored.uuid == row.uuid


def test_insert_new_leaves_out_rows_a_unique_constraint_holds_and_keys_the_others():
    """``insert_new`` (the device cues' one INSERT per event): ON CONFLICT DO NOTHING, also for
    a partial unique index, and the returned instances matched to their rows by ``key``."""
    buyer, sku = make_buyer(), make_sku()
    [held] = insert([_order(buyer, sku, "held-key-1")])
    rows = [_order(buyer, sku, key) for key in ("new-key-1", "held-key-1", "new-key-2")]
    inserted = insert_new(rows, key="idempotency_key")
    assert [o.idempotency_key for o in inserted] == ["new-key-1", "new-key-2"]
    assert rows[1].pk is None and rows[1]._state.adding
    for order in inserted:
        assert Order.objects.get(pk=order.pk).idempotency_key == order.idempotency_key
        assert order._state.adding is False
    assert Order.objects.get(idempotency_key="held-key-1").pk == held.pk
    assert insert_new([_order(buyer, sku, "held-key-1")], key="idempotency_key") == []


def test_insert_violating_a_constraint_inserts_nothing():
    buyer, sku = make_buyer(), make_sku()
    insert([_order(buyer, sku, "same-key-123")])
    before = Order.objects.count()
    with pytest.raises(IntegrityError), transaction.atomic():
        insert([_order(buyer, sku, "other-key-1"), _order(buyer, sku, "same-key-123")])
    assert Order.objects.count() == before


def test_models_inserted_this_way_have_no_save_signal_receivers():
    """insert() does not send pre_save/post_save: it may only be used for models that
    nobody listens to. A receiver added later must move that model back to the ORM."""
    for model in (Order, OrderLine, OutboxEvent):
        assert not pre_save.has_listeners(model), model
        assert not post_save.has_listeners(model), model


def test_rows_where_loads_what_the_orm_loads_in_key_order():
    """A viewer's presences as the ping reads them (apps/geofences): the ORM's rows, in
    primary-key order, with aware datetimes, saved back as an UPDATE."""
    from datetime import UTC, datetime

    from apps.geofences.models import Presence
    from apps.geofences.services import venue_create
    from tests.factories import CreatorFactory
    from tests.geofences.conftest import square

    viewer, other = UserFactory(), UserFactory()
    at = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    shop = CreatorFactory().shop
    fence = {"type": "Polygon", "coordinates": [square(100)]}
    venues = [venue_create(shop=shop, name=f"V{i}", fence_kind="polygon", fence=fence) for i in range(3)]
    for venue in reversed(venues):
        Presence.objects.create(user=viewer, venue=venue, state="inside", entered_at=at, last_ping_at=at)
    Presence.objects.create(user=other, venue=venues[0], state="outside", last_ping_at=at)
    with transaction.atomic():
        loaded = rows_where(Presence, "user", viewer.pk, lock=True)
    expected = list(Presence.objects.filter(user=viewer).order_by("pk"))
    assert [p.pk for p in loaded] == [p.pk for p in expected]
    assert [(p.venue_id, p.state, p.entered_at, p.dwelled_at) for p in loaded] == [
        (p.venue_id, p.state, p.entered_at, p.dwelled_at) for p in expected
    ]
    assert loaded[0].entered_at == at and loaded[0].entered_at.tzinfo is not None
    loaded[0].state = "outside"
    loaded[0].save(update_fields=["state"])
    assert Presence.objects.get(pk=loaded[0].pk).state == "outside"
    assert Presence.objects.count() == 4  # an UPDATE, not a second row
    assert rows_where(Presence, "user", UserFactory().pk) == []


def test_row_by_pk_loads_what_the_orm_loads():
    user = UserFactory(display_name="Zoë", is_creator=True)
    loaded = row_by_pk(User, user.pk)
    assert _fields(loaded) == _fields(User.objects.get(pk=user.pk))
    assert loaded._state.adding is False and loaded._state.db == "default"
    assert row_by_pk(User, str(user.pk)).pk == user.pk  # session values are strings
    assert row_by_pk(User, user.pk + 10_000) is None


def test_row_by_pk_with_related_loads_what_select_related_loads(django_assert_num_queries):
    """A stream and its shop as every poll of the stream reads them (apps/streams/selectors.py
    ``stream_get``): one statement, the related instances cached as select_related caches
    them, decimals converted as the ORM converts them (SQLite)."""
    sku = make_sku(price="12.50")
    Shop.objects.filter(pk=sku.shop_id).update(shipping_fee=Decimal("4.9"))
    stream = Stream.objects.create(shop=sku.shop, title="S", starts_at=timezone.now())
    expected = Stream.objects.select_related("shop").get(pk=stream.pk)
    with django_assert_num_queries(1):
        loaded = row_by_pk(Stream, stream.pk, related=("shop",))
        assert _fields(loaded) == _fields(expected) and _fields(loaded.shop) == _fields(expected.shop)
    assert str(loaded.shop.shipping_fee) == str(expected.shop.shipping_fee) == "4.90"
    assert loaded._state.adding is False and loaded.shop._state.db == "default"

    with django_assert_num_queries(1):  # a one-to-one: its reverse side is cached too
        shop = row_by_pk(Shop, sku.shop_id, related=("owner",))
        assert shop.owner.shop is shop and shop.owner.pk == sku.shop.owner_id

    now = timezone.now()
    deal = FlashDeal.objects.create(
        stream=stream, sku=sku, price="1.00", quantity=1, opens_at=now, closes_at=now + timedelta(hours=1)
    )
    with django_assert_num_queries(1):  # a key that may be empty: an outer join, None cached
        loaded = row_by_pk(FlashDeal, deal.pk, related=("location", "sku"))
        assert loaded.location is None and loaded.sku.code == sku.code and loaded.sku.price == Decimal("12.50")
    assert row_by_pk(Stream, stream.pk + 1000, related=("shop",)) is None
    for key in (2**63, -(2**63) - 1):  # beyond the column: no row, as the ORM answers (SQLite would raise)
        assert row_by_pk(Stream, key, related=("shop",)) is None and row_by_pk(User, key) is None
    with pytest.raises(ValueError, match="not a foreign key"):
        row_by_pk(Stream, stream.pk, related=("pins",))


def test_rows_matching_and_select_values_convert_what_they_read_as_the_orm_does():
    sku = make_sku(price="12.50")
    other = make_sku(sku.shop, price="3")
    n = names(SKU)
    loaded = rows_matching(SKU, f"{n.shop_id} = %s ORDER BY {n.id}", [sku.shop_id])
    assert [_fields(s) for s in loaded] == [_fields(s) for s in SKU.objects.filter(shop=sku.shop).order_by("pk")]
    assert [s.pk for s in loaded] == [sku.pk, other.pk] and loaded[0]._state.adding is False
    fields = (SKU._meta.get_field("price"), SKU._meta.get_field("updated_at"))
    rows = select_values(f"SELECT {n.price}, {n.updated_at} FROM {n.table} WHERE {n.id} = %s", [other.pk], fields)
    assert rows == [[Decimal("3.00"), other.updated_at]] and str(rows[0][0]) == "3.00"
    since = prep_value(SKU, "updated_at", other.updated_at - timedelta(microseconds=1))
    assert [s.pk for s in rows_matching(SKU, f"{n.updated_at} > %s AND {n.id} = %s", [since, other.pk])] == [other.pk]


def test_session_auth_uses_the_backend_and_still_refuses_what_it_should():
    user = UserFactory()
    client = Client()
    assert client.login(email=user.email, password=PASSWORD)
    assert client.get("/api/v1/me/").status_code == 200

    User.objects.filter(pk=user.pk).update(is_active=False)
    assert client.get("/api/v1/me/").status_code in (401, 403)

    User.objects.filter(pk=user.pk).update(is_active=True)
    user.set_password("Another-Horse-43")
    user.save()  # a password change ends other sessions (the session hash no longer matches)
    assert client.get("/api/v1/me/").status_code in (401, 403)


def test_backend_treats_a_garbage_session_user_id_as_nobody():
    from apps.accounts.backends import ModelBackend

    assert ModelBackend().get_user("not-a-number") is None
    assert ModelBackend().get_user(None) is None


@pytest.fixture
def redis_cache(settings, redis_url):
    """The project's Redis cache (creatorcommerce/cache.py) on the real Redis."""
    settings.CACHES = {
        "default": {
            "BACKEND": "creatorcommerce.cache.RedisCache",
            "LOCATION": redis_url,
            "OPTIONS": {"pool_class": "creatorcommerce.cache.SharedConnectionPool"},
        }
    }


@pytest.mark.redis
def test_redis_cache_shares_one_client_across_threads(redis_cache):
    from django.core.cache import caches

    clients = []

    def work(n):
        c = caches["default"]  # a cache instance per thread, as under ASGI
        c.set(f"cc-test-{n}", n, 5)
        assert c.get(f"cc-test-{n}") == n
        assert c.incr(f"cc-test-{n}") == n + 1
        clients.append(c._cache.get_client(write=True))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(clients) == 4 and len({id(c) for c in clients}) == 1
    cache.delete_many([f"cc-test-{n}" for n in range(4)])


@pytest.mark.redis
def test_redis_cache_counts_in_one_atomic_round_trip_with_an_expiry(redis_cache, redis_url):
    from concurrent.futures import ThreadPoolExecutor

    import redis
    from django.core.cache import caches

    counter = caches["default"]
    key = "cc-test-window-counter"
    counter.delete(key)
    sent = []
    client = counter._cache.get_client(write=True)
    original = client.pipeline

    def counted_pipeline(*args, **kwargs):
        pipe = original(*args, **kwargs)
        execute = pipe.execute
        pipe.execute = lambda *a, **k: sent.append(len(pipe.command_stack)) or execute(*a, **k)
        return pipe

    client.pipeline = counted_pipeline
    try:
        assert counter.count(key, 30) == 1
        assert sent == [2]  # SET NX EX and INCR, sent together
        with ThreadPoolExecutor(8) as pool:
            counts = sorted(pool.map(lambda _: counter.count(key, 30), range(40)))
    finally:
        del client.pipeline
    assert counts == list(range(2, 42))  # atomic: no count given twice, none lost
    assert counter.get(key) == 41  # still an ordinary cache value
    ttl = redis.Redis.from_url(redis_url).ttl(counter.make_and_validate_key(key))
    assert 0 < ttl <= 30  # set by the first count, not pushed back by later ones
    counter.delete(key)


# -- insert_select (PostgreSQL: the buy's single-statement reserve and confirm) --------------


def _postgres_only():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("insert_select builds PostgreSQL CTE parts; other databases take the ORM path")


def _run(sql, params):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def test_insert_select_stores_what_insert_stores_once_per_source_row():
    from creatorcommerce.sql import insert_select, set_keys

    _postgres_only()
    buyer, sku = make_buyer(), make_sku()
    plain = insert([_order(buyer, sku, "plain-key-1")])[0]
    objs = [_order(buyer, sku, "select-key-1"), _order(buyer, sku, "select-key-2")]
    sql, params = insert_select(objs, source="(SELECT 1) AS one")
    keys = _run(sql, params)
    set_keys(objs, keys)
    assert len(keys) == 2 and keys == sorted(keys)  # in the instances' order
    differ = {"id", "idempotency_key", "created_at"}
    for obj in objs:
        loaded = Order.objects.get(pk=obj.pk)
        assert loaded.idempotency_key == obj.idempotency_key
        assert {k: v for k, v in _fields(loaded).items() if k not in differ} == {
            k: v for k, v in _fields(Order.objects.get(pk=plain.pk)).items() if k not in differ
        }
    # No source row, no insert; JSON columns and expressions over the source work too.
    event = OutboxEvent(type="test.pinged", payload={"n": [1, "x"]}, groups=["a.b"], node="n1")
    sql, params = insert_select([event], source="(SELECT 1 WHERE false) AS none")
    assert _run(sql, params) == []
    sql, params = insert_select([event], source="(SELECT 'n2'::text AS node) AS src", exprs={"node": "src.node"})
    (key,) = _run(sql, params)
    stored = OutboxEvent.objects.get(pk=key)
    assert (stored.payload, stored.groups, stored.node) == ({"n": [1, "x"]}, ["a.b"], "n2")


def test_insert_select_checks_lengths_instead_of_truncating():
    from django.db import DataError

    from creatorcommerce.sql import insert_select

    _postgres_only()
    buyer, sku = make_buyer(), make_sku()
    order = _order(buyer, sku, "k" * 300)  # idempotency_key is varchar(255)
    sql, params = insert_select([order], source="(SELECT 1) AS one")
    with pytest.raises(DataError), transaction.atomic():
        _run(sql, params)
    assert not Order.objects.filter(buyer=buyer).exists()


def test_insert_select_refuses_an_unknown_column():
    from creatorcommerce.sql import insert_select

    _postgres_only()
    with pytest.raises(ValueError, match="no column"):
        insert_select([_order(make_buyer(), make_sku(), "x-key-1")], source="s", exprs={"nope": "s.x"})
