"""Demo data, for ``seed_demo``: idempotent, so running it twice duplicates nothing.

Each app that has something to show has its own step, ``apps/<app>/demo.py``'s
``seed(context)``: it writes through its app's services (so the demo's writes are events,
as in real use), takes what earlier steps returned in ``context`` and returns what later ones
need, plus ``summary`` lines to print. ``STEPS`` run in one transaction (a demo half
written is never left behind); ``AFTER_COMMIT`` steps run after it has committed, with no
transaction open, for what a service does only on its own: buying (``order_place`` commits
and pays by itself), e.g. the loyalty app's past orders, and the personalisation app's
co-purchases and its model's first training; an edge node (``NODE_ROLE=edge``) skips them.
This module only lists the steps, in order; like URL and ASGI routing, it is one of the few
places that list apps.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from apps.accounts import demo as accounts_demo
from apps.accounts.demo import DEMO_CREATOR_TIME_ZONE, DEMO_PASSWORD, DEMO_USERS
from apps.calendars import demo as calendars_demo
from apps.catalog import demo as catalog_demo
from apps.devices import demo as devices_demo
from apps.experiments import demo as experiments_demo
from apps.geofences import demo as geofences_demo
from apps.geofences.demo import DEMO_VENUE_NAME
from apps.loyalty import demo as loyalty_demo
from apps.orders import demo as orders_demo
from apps.personalization import demo as personalization_demo
from apps.streams import demo as streams_demo

# The demo logins, for seed_demo to print (and tests to log in with); the demo shop's slug
# and its venue, for the two-node demo to register its edge with (manage.py demo_edge).
__all__ = [
    "AFTER_COMMIT",
    "DEMO_CREATOR_TIME_ZONE",
    "DEMO_PASSWORD",
    "DEMO_SHOP",
    "DEMO_USERS",
    "DEMO_VENUE_NAME",
    "STEPS",
    "seed",
]
DEMO_SHOP = "demo-studio"  # the slug of the demo creator's shop, "Demo Studio" (apps/accounts/demo.py)

STEPS = [
    accounts_demo.seed,
    catalog_demo.seed,
    orders_demo.seed,
    streams_demo.seed,
    geofences_demo.seed,
    loyalty_demo.seed,
    calendars_demo.seed,
    devices_demo.seed,
    experiments_demo.seed,
]
# After STEPS' transaction has committed; each step still sees their context.
# The personalisation model trains last, on every order seeded before it.
AFTER_COMMIT = [
    loyalty_demo.history,
    personalization_demo.history,
]


def _run(steps, context: dict, summary: list[str]) -> None:
    for step in steps:
        result = step(context)
        summary += result.pop("summary", [])
        context.update(result)


def seed() -> dict:
    context: dict = {}
    summary: list[str] = []
    with transaction.atomic():
        _run(STEPS, context, summary)
    if settings.NODE_ROLE == "edge":
        # An edge gets the same shop, SKU codes, locations and users as a cloud seeded by
        # this, so a demo pair syncs out of the box (names, not ids, cross: docs/edge.md). The
        # past orders are the cloud's history: an edge's would reach the cloud as its sales.
        summary.append("edge node: no past orders (the cloud holds the demo's history)")
    else:
        _run(AFTER_COMMIT, context, summary)
    context["summary"] = summary
    return context
