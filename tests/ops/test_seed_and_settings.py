import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.accounts.models import Shop, User
from creatorcommerce.demo import DEMO_USERS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_seed_demo_is_idempotent(capsys):
    call_command("seed_demo")
    counts = (User.objects.count(), Shop.objects.count())
    call_command("seed_demo")
    assert (User.objects.count(), Shop.objects.count()) == counts
    out = capsys.readouterr().out
    for email, _ in DEMO_USERS.values():
        assert email in out
    creator = User.objects.get(email=DEMO_USERS["creator"][0])
    assert creator.roles == ["viewer", "creator"] and creator.shop
    assert User.objects.get(email=DEMO_USERS["staff"][0]).is_staff


def _manage(*args, **env):
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"}
    }
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_to_start_without_secret_key():
    result = _manage("check", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_production_check_deploy_passes_with_production_variables():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="k" * 20 + "-production-grade-secret-key-0123456789",
        ALLOWED_HOSTS="shop.example.com",
        CSRF_TRUSTED_ORIGINS="https://shop.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_missing_migrations():
    result = _manage("makemigrations", "--check", "--dry-run", DEBUG="1")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_seed_demo_creates_catalog_once_and_a_ready_buyer():
    from apps.catalog.models import SKU, StockLevel
    from apps.orders.models import PaymentMethod

    call_command("seed_demo")
    call_command("seed_demo")
    creator = User.objects.get(email=DEMO_USERS["creator"][0])
    assert SKU.objects.filter(shop=creator.shop).count() == 5
    assert StockLevel.objects.get(sku__code="TEE-M", location__is_default=True).available == 60
    viewer = User.objects.get(email=DEMO_USERS["viewer"][0])
    assert PaymentMethod.objects.filter(user=viewer).count() == 1
