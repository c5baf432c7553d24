"""Factories shared by all tests."""

from __future__ import annotations

import itertools

import factory

from apps.accounts.models import Shop, User

PASSWORD = "Correct-Horse-42"
_sku_numbers = itertools.count(1000)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    display_name = factory.Sequence(lambda n: f"User {n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class CreatorFactory(UserFactory):
    is_creator = True
    shop = factory.RelatedFactory("tests.factories.ShopFactory", factory_related_name="owner")


class StaffFactory(UserFactory):
    is_staff = True


class ShopFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shop

    owner = factory.SubFactory(UserFactory, is_creator=True)
    name = factory.Sequence(lambda n: f"Shop {n}")
    slug = factory.Sequence(lambda n: f"shop-{n}")


def make_sku(shop=None, *, code=None, price="10.00", stock=20, per_buyer_limit=None, currency="USD"):
    """A product with one SKU and ``stock`` units at the shop's default location, made
    through the catalog service like a creator would."""
    from apps.catalog.services import product_create

    shop = shop or CreatorFactory().shop
    code = code or f"SKU-{next(_sku_numbers)}"
    product = product_create(
        shop=shop,
        title=f"Product {code}",
        skus=[{"code": code, "price": price, "currency": currency, "stock": stock, "per_buyer_limit": per_buyer_limit}],
    )
    return product.skus.get()


def make_buyer(*, token="tok_ok", **kwargs):
    """A viewer who saved a payment method and an address (so buys are one tap)."""
    from apps.orders.services import address_set, payment_method_add

    buyer = UserFactory(**kwargs)
    payment_method_add(user=buyer, token=token)
    address_set(user=buyer, name="Ada Buyer", line1="1 Main St", city="Berlin", postal_code="10115", country="DE")
    return buyer
