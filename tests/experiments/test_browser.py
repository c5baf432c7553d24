"""Experiments on the stream page in a real browser (docs/experiments.md, "On the stream
page"): two signed-in viewers of the demo drop get the two variants of the demo's purchase
confirmation experiment after a buy (control: the standard toast; confetti: the toast and a
burst of confetti), each page reports its exposure; a forced spike of client errors on the
pages rolls the experiment back (the guardrail, every second here) and both pages switch to
the standard confirmation live, without a reload; the creator reads the results chart.

The two viewers are chosen by the experiment's own assignment (GrowthBook's hash of the
seed and ``u:<id>``), computed on the server's database, not guessed.
"""

from __future__ import annotations

import re

import pytest

from tests.browser import DESKTOP, chromium, demo_server, login, pin, shot

pytestmark = pytest.mark.browser

# Runs in `manage.py shell` after seed_demo: the demo drop, a SKU to buy twice, the running
# demo experiment, and one viewer per variant (ready to buy in one tap).
SETUP = r"""
import json
from django.utils import timezone

from apps.accounts.demo import demo_user
from apps.experiments.assignment import spec_of, viewer_key
from apps.experiments.demo import DEMO_EXPERIMENT_NAME
from apps.experiments.models import Experiment
from apps.orders.models import Address, PaymentMethod
from apps.orders.services import address_set, payment_method_add
from apps.streams.models import Stream
from apps.streams.selectors import stream_pins
from creatorcommerce.demo import DEMO_PASSWORD, DEMO_USERS

experiment = Experiment.objects.get(name=DEMO_EXPERIMENT_NAME, status="running")
stream = Stream.objects.get(shop=experiment.shop, status="live")
pins = stream_pins(stream=stream)
sku = next(p for p in pins if not p["deal"] and p["available"] >= 10 and p["sku"] != "TEE-M")
spec = spec_of(experiment)
now = timezone.now().timestamp()
chosen = {}
for i in range(1, 41):
    user = demo_user(f"ab-viewer{i}@demo.local", f"AB Viewer {i}")
    variant = spec.hashed(viewer_key(user_id=user.pk, session_key=None), now)
    if variant in chosen:
        continue
    if not PaymentMethod.objects.filter(user=user).exists():
        payment_method_add(user=user, token="tok_ok")
    if not Address.objects.filter(user=user).exists():
        address_set(user=user, name=f"AB Viewer {i}", line1="1 Test Street", city="Berlin", postal_code="10115",
                    country="DE")
    chosen[variant] = user.email
    if len(chosen) == 2:
        break
print("SETUP=" + json.dumps({
    "stream": stream.pk, "sku": sku["sku"], "experiment": experiment.pk, "viewers": chosen,
    "password": DEMO_PASSWORD, "creator": DEMO_USERS["creator"][0],
}))
"""

# The guardrail looks every second and one erroring viewer is enough; the web process runs
# beat's schedule itself (pytest's environment turns the embedded scheduler off).
ENV = {
    "EMBEDDED_SCHEDULER": "1",
    "EXPERIMENT_GUARDRAIL_SECONDS": "1",
    "EXPERIMENT_ERROR_MIN_COUNT": "1",
    "CLIENT_EVENTS_RATE_LIMIT": "600/min",
}


def _events_response(page):
    return page.expect_response(lambda r: r.url.endswith("/api/v1/client-events/") and r.request.method == "POST")


def test_two_variants_then_a_rollback_reaches_both_pages_live():
    from playwright.sync_api import expect

    with demo_server(SETUP, extra_env=ENV) as server, chromium() as browser:
        assert set(server["viewers"]) == {"control", "confetti"}, server["viewers"]
        stream_path = f"/streams/{server['stream']}/"
        sku = server["sku"]
        errors: list[str] = []
        pages = {}
        for variant, email in server["viewers"].items():
            context = browser.new_context(viewport=DESKTOP)
            page = login(context, server, email, stream_path, errors)
            expect(page.locator("#stream-page")).to_have_attribute("data-realtime", "socket")
            # The snapshot's experience is the viewer's variant.
            expect(page.locator("#stream-page")).to_have_attribute("data-purchase-confirmation", variant)
            page.evaluate("window.ccNotReloaded = true")
            pages[variant] = page

        # 1. A buy each: two different confirmations, each reported as an exposure.
        for variant, page in pages.items():
            with _events_response(page) as response:
                pin(page, sku).get_by_role("button", name=re.compile(r"^Buy")).click()
                status = page.locator("#buy-status")
                expect(status).to_contain_text("confirmed")
                expect(status).to_have_attribute("data-variant", variant)
                expect(status.locator("canvas.confetti")).to_have_count(1 if variant == "confetti" else 0)
                if variant == "confetti":
                    shot(page, "experiment-confetti")
            assert response.value.status == 202
            assert response.value.json()["exposures"] == 1, response.value.json()

        # 2. Script errors on both pages (the confetti viewer's count against confetti; the
        # control's never roll back): the guardrail rolls the experiment back and both
        # pages get the standard experience pushed, with no reload.
        for page in pages.values():
            with _events_response(page) as response:
                page.evaluate("setTimeout(() => { throw new Error('forced spike') }, 0)")
            assert response.value.json()["errors"] == 1, response.value.json()
        for page in pages.values():
            expect(page.locator("#stream-page")).to_have_attribute("data-purchase-confirmation", "control")
            assert page.evaluate("window.ccNotReloaded") is True

        # 3. The confetti viewer buys again: the standard confirmation, no confetti.
        page = pages["confetti"]
        pin(page, sku).get_by_role("button", name=re.compile(r"^Buy")).click()
        expect(page.locator("#buy-status")).to_have_attribute("data-variant", "control")
        expect(page.locator("#buy-status")).to_contain_text("confirmed")
        expect(page.locator("#buy-status canvas.confetti")).to_have_count(0)

        # 4. The creator reads why and the chart: one bar per variant.
        creator = login(
            browser.new_context(viewport=DESKTOP),
            server,
            server["creator"],
            f"/admin/experiments/experiment/{server['experiment']}/results/",
            errors,
        )
        expect(creator.locator("body")).to_contain_text("error_rate")
        chart = creator.locator("svg.experiment-chart")
        expect(chart).to_be_visible()
        for variant in ("control", "confetti"):
            expect(chart.locator(f'rect.bar[data-variant="{variant}"]')).to_have_count(1)
        expect(chart).to_contain_text("(0/1)")
        shot(creator, "experiment-results")
        assert [e for e in errors if "forced spike" not in e] == []


# After seed_demo: an experiment on the demo shop's pin order, everyone in "personal", and
# the order the model ranks the drop's pins in for the demo's viewer with history.
PIN_SETUP = r"""
import json
from django.utils import timezone

from apps.accounts.models import User
from apps.experiments.services import experiment_create, experiment_transition
from apps.personalization.demo import DEMO_RANKED_VIEWER
from apps.personalization.ranker import rank_pins
from apps.streams.models import Stream
from creatorcommerce.demo import DEMO_PASSWORD, DEMO_USERS

creator = User.objects.get(email=DEMO_USERS["creator"][0])
stream = Stream.objects.get(shop=creator.shop, status="live")
experiment = experiment_create(
    actor=creator, shop=creator.shop, name="Personal pins", slot="pin_order",
    variants=[{"key": "control", "weight": 0.0}, {"key": "personal", "weight": 1.0}],
    ramp=[{"at": timezone.now().isoformat(), "percent": 100}],
)
experiment_transition(experiment=experiment, verb="start", actor=creator)
fan = User.objects.get(email=DEMO_RANKED_VIEWER)
creators = list(stream.pins.values_list("sku__code", flat=True))
print("SETUP=" + json.dumps({
    "stream": stream.pk, "experiment": experiment.pk, "fan": fan.email, "password": DEMO_PASSWORD,
    "creator": creator.email, "creators_order": creators, "ranked": rank_pins(creator.shop.pk, fan.pk, creators),
}))
"""


def _pin_order(page) -> list[str]:
    return page.locator("#pins li.pin").evaluate_all("els => els.map(e => e.dataset.sku)")


def test_personal_pin_order_then_back_to_the_creators_live():
    from playwright.sync_api import expect

    with demo_server(PIN_SETUP, extra_env={"EMBEDDED_SCHEDULER": "1"}) as server, chromium() as browser:
        assert server["ranked"] != server["creators_order"], server
        stream_path = f"/streams/{server['stream']}/"
        errors: list[str] = []
        page = login(browser.new_context(viewport=DESKTOP), server, server["fan"], stream_path, errors)
        expect(page.locator("#stream-page")).to_have_attribute("data-realtime", "socket")
        expect(page.locator("#pins li.pin")).to_have_count(len(server["ranked"]))
        page.wait_for_function(
            "order => JSON.stringify([...document.querySelectorAll('#pins li.pin')].map(e => e.dataset.sku))"
            " === JSON.stringify(order)",
            arg=server["ranked"],
        )
        page.evaluate("window.ccNotReloaded = true")

        # The creator stops the experiment (the API, as the admin's action does): the fan's
        # page goes back to the creator's order without a reload.
        creator = login(browser.new_context(viewport=DESKTOP), server, server["creator"], "/admin/", errors)
        status = creator.evaluate(
            """async (id) => {
                const token = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1];
                const r = await fetch(`/api/v1/experiments/${id}/stop`, {method: "POST",
                    headers: {"X-CSRFToken": token, "Content-Type": "application/json"}, body: "{}"});
                return r.status;
            }""",
            server["experiment"],
        )
        assert status == 200
        page.wait_for_function(
            "order => JSON.stringify([...document.querySelectorAll('#pins li.pin')].map(e => e.dataset.sku))"
            " === JSON.stringify(order)",
            arg=server["creators_order"],
        )
        assert _pin_order(page) == server["creators_order"]
        assert page.evaluate("window.ccNotReloaded") is True
        assert errors == []
