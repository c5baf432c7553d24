import pytest
from django.core.management import CommandError, call_command

from apps.accounts.models import Shop
from apps.accounts.services import user_grant_role, user_revoke_role
from creatorcommerce.errors import DomainError
from creatorcommerce.spine.models import OutboxEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_grant_creator_creates_one_shop_and_is_idempotent():
    user = UserFactory(email="maker@example.test")
    user_grant_role(email="MAKER@example.test", role="creator", shop_name="Maker Co")
    user_grant_role(email="maker@example.test", role="creator")
    user.refresh_from_db()
    assert user.roles == ["viewer", "creator"]
    assert Shop.objects.filter(owner=user).count() == 1
    assert user.shop.name == "Maker Co"
    assert OutboxEvent.objects.filter(type="role.granted").count() == 1


def test_grant_staff_and_revoke():
    user = UserFactory()
    user_grant_role(email=user.email, role="staff")
    user.refresh_from_db()
    assert user.is_staff and "staff" in user.roles
    user_revoke_role(email=user.email, role="staff")
    user.refresh_from_db()
    assert not user.is_staff


def test_unknown_user_and_role_are_typed_errors():
    with pytest.raises(DomainError) as exc:
        user_grant_role(email="ghost@example.test", role="creator")
    assert exc.value.code == "unknown_user"
    user = UserFactory()
    with pytest.raises(DomainError) as exc:
        user_grant_role(email=user.email, role="emperor")
    assert exc.value.code == "unknown_role"


def test_grant_role_command(capsys):
    user = UserFactory(email="cmd@example.test")
    call_command("grant_role", "cmd@example.test", "creator")
    assert "cmd@example.test is now creator" in capsys.readouterr().out
    user.refresh_from_db()
    assert user.is_creator and user.shop
    with pytest.raises(CommandError, match="unknown_user"):
        call_command("grant_role", "nobody@example.test", "staff")


def test_shop_slugs_stay_unique():
    a, b = UserFactory(), UserFactory()
    user_grant_role(email=a.email, role="creator", shop_name="Same Name")
    user_grant_role(email=b.email, role="creator", shop_name="Same Name")
    assert {Shop.objects.get(owner=a).slug, Shop.objects.get(owner=b).slug} == {"same-name", "same-name-2"}
