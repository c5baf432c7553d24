"""Per-buyer allowances keyed by a generic limit key instead of (SKU, scope):
``sku:<id>`` for a SKU's own limit (scope ""), the scope itself (``deal:<id>``) otherwise."""

from django.conf import settings
from django.db import migrations, models
from django.db.models import CharField, F, Value
from django.db.models.functions import Cast, Concat


def fill_keys(apps, schema_editor):
    # Set-based (two UPDATEs, whatever the number of rows): the table is locked meanwhile.
    BuyerAllowance = apps.get_model("catalog", "BuyerAllowance")
    BuyerAllowance.objects.filter(scope="").update(key=Concat(Value("sku:"), Cast("sku_id", CharField())))
    BuyerAllowance.objects.exclude(scope="").update(key=F("scope"))


def forget_allowances(apps, schema_editor):
    """Going back: the old shape has no place for keys without a SKU, and its SKU column
    cannot be re-added to existing rows. The counts are dropped; limits count afresh."""
    apps.get_model("catalog", "BuyerAllowance").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0004_allowance_scope"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="buyerallowance", name="key", field=models.CharField(default="", max_length=64), preserve_default=False
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="buyerallowance", name="catalog_allowance_per_buyer_sku_scope"),
        migrations.RemoveField(model_name="buyerallowance", name="scope"),
        migrations.RemoveField(model_name="buyerallowance", name="sku"),
        migrations.AddConstraint(
            model_name="buyerallowance",
            constraint=models.UniqueConstraint(fields=("buyer", "key"), name="catalog_allowance_per_buyer_key"),
        ),
        # Runs first when migrating backwards (see forget_allowances).
        migrations.RunPython(migrations.RunPython.noop, forget_allowances),
    ]
