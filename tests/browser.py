"""Shared pieces for tests that drive Debian's Chromium (Playwright) against a real daphne.

The server runs on its own temporary SQLite file, migrated and seeded through
``manage.py`` like a fresh install (the README's demo command), so nothing here touches the
pytest database. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.servers import ROOT, daphne, free_port, wait_for_http  # noqa: F401 (wait_for_http: re-exported)

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TIMES = "\u00d7"  # MULTIPLICATION SIGN, as in "1 x Sticker pack" on the pages
MOBILE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}

# How long a step may take before it fails. A passing step waits only as long as it needs;
# these are generous because CI shares two cores with PostgreSQL, Redis and daphne, and a
# login hashes the demo password with the production hasher.
STEP_TIMEOUT_MS = 30_000
EXPECT_TIMEOUT_MS = 20_000

NETWORK_NOISE = re.compile(r"Failed to load resource|ERR_INTERNET_DISCONNECTED|WebSocket connection")


# Runs inside `manage.py shell` on the server's database, after `seed_demo`: make sure there
# is a live demo stream (seed_demo adds one once streams have a demo step; until then the
# stream, its pins and an open flash deal are made here, through the streams services),
# pick a pinned SKU the test can buy several times, and add two more viewers: one ready to
# buy in one tap, one who has never bought (express checkout).
STREAM_SETUP = r"""
import json
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.utils import timezone

from apps.accounts.models import User
from apps.catalog.models import SKU
from apps.orders.models import Address, PaymentMethod
from apps.orders.services import address_set, payment_method_add
from apps.streams.models import FlashDeal, Stream
from apps.streams.selectors import stream_pins
from apps.streams.services import pin_add, stream_start
from creatorcommerce.demo import DEMO_PASSWORD, DEMO_USERS

shop = User.objects.get(email=DEMO_USERS["creator"][0]).shop
stream = Stream.objects.filter(shop=shop, status=Stream.Status.LIVE).order_by("pk").first()
if stream is None:
    now = timezone.now()
    stream = Stream.objects.create(
        shop=shop, title="Friday night drop", description="Tees, posters, stickers.",
        starts_at=now - timedelta(minutes=2),
    )
    for code in ("TEE-M", "POSTER", "STICKERS"):
        pin_add(stream=stream, sku=SKU.objects.get(shop=shop, code=code))
    FlashDeal.objects.create(
        stream=stream, sku=SKU.objects.get(shop=shop, code="TEE-M"), price="19.00", quantity=12,
        per_buyer_limit=2, opens_at=now - timedelta(seconds=30), closes_at=now + timedelta(hours=1),
    )
    stream = stream_start(stream=stream, now=now)

# A SKU the test can buy three times: pinned, no flash deal, no per-buyer limit below 3.
pins = {p["sku"]: p for p in stream_pins(stream=stream)}
candidates = SKU.objects.filter(shop=shop, is_active=True).order_by("pk")
target = next(
    (s for s in candidates if s.code in pins and not pins[s.code]["deal"]
     and (s.per_buyer_limit is None or s.per_buyer_limit >= 3) and pins[s.code]["available"] >= 10),
    None,
)
if target is None:
    target = next(
        s for s in candidates
        if (s.per_buyer_limit is None or s.per_buyer_limit >= 3) and not FlashDeal.objects.filter(
            stream=stream, sku=s, status="open").exists()
    )
    pin_add(stream=stream, sku=target)
pins = {p["sku"]: p for p in stream_pins(stream=stream)}

# Another pinned SKU, without an open deal, for the control-room test to buy and to hold a
# deal scheduled for later in the stream (not yet open: nothing set aside).
extra = next(SKU.objects.get(shop=shop, code=code) for code, p in pins.items() if code != target.code and not p["deal"])
later = timezone.now().replace(second=0, microsecond=0) + timedelta(hours=2)
scheduled = FlashDeal.objects.filter(stream=stream, sku=extra, status="scheduled").first() or FlashDeal.objects.create(
    stream=stream, sku=extra, price="1.00", quantity=3, per_buyer_limit=1,
    opens_at=later, closes_at=later + timedelta(minutes=30),
)


def viewer(email, name):
    user = User.objects.filter(email=email).first() or User.objects.create_user(
        email=email, password=DEMO_PASSWORD, display_name=name)
    EmailAddress.objects.get_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
    return user


second = viewer("viewer2@demo.local", "Second Viewer")
if not PaymentMethod.objects.filter(user=second).exists():
    payment_method_add(user=second, token="tok_ok")
if not Address.objects.filter(user=second).exists():
    address_set(user=second, name="Second Viewer", line1="2 Market Street", city="Berlin",
                postal_code="10115", country="DE")
viewer("first-timer@demo.local", "")

print("SETUP=" + json.dumps({
    "stream": stream.pk,
    "sku": target.code,
    "title": target.display_title,
    "available": pins[target.code]["available"],
    "password": DEMO_PASSWORD,
    "buyer": DEMO_USERS["viewer"][0],
    "buyer_name": DEMO_USERS["viewer"][1],
    "creator": DEMO_USERS["creator"][0],
    "second": second.email,
    "first_timer": "first-timer@demo.local",
    "extra": extra.code,
    "extra_title": extra.display_title,
    "scheduled_opens_at": scheduled.opens_at.isoformat(),
    "scheduled_quantity": scheduled.quantity,
}))
"""


def manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"manage.py {' '.join(args[:1])} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@contextlib.contextmanager
def demo_server(setup: str | None = None, extra_env: dict | None = None, seed: bool = True):
    """daphne on a free port over a fresh SQLite file with the demo data.

    ``seed=False`` skips ``seed_demo`` (about 10 s) for a test whose ``setup`` makes what it
    needs. ``setup``, if given, runs in ``manage.py shell`` after ``seed_demo``; a line it prints
    as ``SETUP=<json>`` is merged into the dict this yields (with ``base``, the server's URL,
    and ``env``, the environment ``manage`` needs to reach the same database).
    """
    port = free_port()
    db_dir = tempfile.mkdtemp(prefix="cc-browser-")
    db_path = Path(db_dir) / "db.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL", "DATABASE_URL"}}
    env["SITE_URL"] = f"http://127.0.0.1:{port}"  # the links the server writes (feeds, stop links) reach it
    env.update(
        DJANGO_SETTINGS_MODULE="creatorcommerce.settings",
        DATABASE_URL=f"sqlite:///{db_path}",
        DEBUG="1",  # static files through WhiteNoise's finders, no collectstatic
        SECRET_KEY="browser-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        CSRF_TRUSTED_ORIGINS=f"http://127.0.0.1:{port}",
        PYTHONUNBUFFERED="1",
        **(extra_env or {}),
    )
    try:
        manage(env, "migrate", "--noinput", "-v", "0")
        if seed:
            manage(env, "seed_demo")
        data = {}
        if setup:
            out = manage(env, "shell", "-c", setup)
            data = json.loads(next(line for line in out.splitlines() if line.startswith("SETUP="))[len("SETUP=") :])
        with daphne(env, Path(db_dir) / "daphne.log", port=port, ready_path="/healthz"):
            yield {"base": f"http://127.0.0.1:{port}", "env": env, **data}
    finally:
        shutil.rmtree(db_dir, ignore_errors=True)


@contextlib.contextmanager
def chromium():
    """Debian's Chromium, headless; Playwright never downloads a browser of its own."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def watch_errors(page, errors: list) -> None:
    """Script errors on the page fail the test; the network errors the test causes do not."""
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
    page.on(
        "console",
        lambda msg: (
            errors.append(f"{page.url}: {msg.text}")
            if msg.type == "error" and not NETWORK_NOISE.search(msg.text)
            else None
        ),
    )


def new_page(context, errors: list | None = None):
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    if errors is not None:
        watch_errors(page, errors)
    return page


def login(context, server, email: str, next_path: str, errors: list | None = None, password: str | None = None):
    """Log in through allauth's page, as a person would, and land on ``next_path``."""
    page = new_page(context, errors)
    page.goto(f"{server['base']}/accounts/login/?next={next_path}")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password or server["password"])
    page.locator("form").filter(has=page.locator("input[name=password]")).locator("[type=submit]").click()
    page.wait_for_url(f"**{next_path}")
    return page


def shot(page, name: str, **kwargs) -> None:
    """Save a screenshot to test-artifacts/<name>.png, from the top of the page (a full-page
    capture of a scrolled page draws the sticky header mid-page)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), animations="disabled", **kwargs)


def assert_no_sideways_scroll(page) -> None:
    widths = page.evaluate(
        "({scroll: document.scrollingElement.scrollWidth, client: document.scrollingElement.clientWidth})"
    )
    assert widths["scroll"] <= widths["client"], f"{page.url} scrolls sideways: {widths}"


def pin(page, sku: str):
    """A pinned product's card on the stream page."""
    return page.locator(f'li.pin[data-sku="{sku}"]')
