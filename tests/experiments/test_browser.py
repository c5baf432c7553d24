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
