import functools
import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.text import slugify


@functools.cache
def time_zone_names() -> frozenset[str]:
    """Every IANA time zone name this Python knows (the system's database, else tzdata)."""
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in time_zone_names():
        raise ValidationError(
            "%(value)s is not a time zone; use an IANA name such as Europe/Berlin or America/New_York.",
            code="invalid_time_zone",
            params={"value": value},
        )


def default_time_zone() -> str:
    return settings.TIME_ZONE or "UTC"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email, password, **extra):
        if not email:
            raise ValueError("an e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)

    def get_by_natural_key(self, email):
        return self.get(email__iexact=email)


class User(AbstractUser):
    """Everyone is a viewer; ``is_creator`` and ``is_staff`` add the other two roles.

    E-mail is the login (unique, case-insensitively); there is no username.
    """

    username = None
    first_name = None
    last_name = None
    email = models.EmailField("e-mail address", unique=True)
    display_name = models.CharField(max_length=80, blank=True)
    is_creator = models.BooleanField(default=False, help_text="Creators own a shop and manage it in the admin.")
    time_zone = models.CharField(
        "time zone",
        max_length=64,
        default=default_time_zone,
        validators=[validate_time_zone],
        help_text="IANA name, e.g. Europe/Berlin. Pages and the admin show and read times in it.",
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique")]

    def __str__(self):
        return self.email

    @property
    def roles(self) -> list[str]:
        roles = ["viewer"]
        if self.is_creator:
            roles.append("creator")
        if self.is_staff:
            roles.append("staff")
        return roles

    def get_full_name(self) -> str:
        # No first or last name here: the admin's history read them as "None None".
        return self.display_name

    def get_short_name(self) -> str:
        return self.display_name or self.email

    @property
    def public_name(self) -> str:
        """What other viewers may see: the chosen display name, else nothing personal."""
        return self.display_name or "Someone"


class Shop(models.Model):
    """A creator's shop: everything a creator sells and schedules belongs to one."""

    SHOP_PATH = "self"

    owner = models.OneToOneField(User, on_delete=models.PROTECT, related_name="shop")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    currency = models.CharField(max_length=3, default="USD", help_text="ISO 4217 code used by default for prices.")
    shipping_fee = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0.00"))],
        help_text="Charged once per delivered order, in the order's currency (never on a pickup); 0: shipping is free.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)

    def __str__(self):
        return self.name

    @staticmethod
    def unique_slug(name: str) -> str:
        base = slugify(name)[:120] or "shop"
        slug, n = base, 2
        while Shop.objects.filter(slug=slug).exists():
            slug, n = f"{base}-{n}", n + 1
        return slug
