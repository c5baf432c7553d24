"""Order lines say how their price came about (adjustments, total) and where their units
and per-buyer allowance came from in generic terms (unit_source, allowance_key), instead of
a foreign key to a flash deal and a limit scope: orders no longer know about streams.

Lines bought in a flash deal before this change kept the deal's price as their unit price
and not the list price of the time (which was never stored), so their adjustment names the
deal with an amount of 0.00 and their total stays what was charged (docs/buying.md)."""

from decimal import Decimal

from django.db import migrations, models
from django.db.models import Q


def forwards(apps, schema_editor):
    OrderLine = apps.get_model("orders", "OrderLine")
    for line in OrderLine.objects.all().iterator():
        line.total = (line.unit_price * line.quantity).quantize(Decimal("0.01"))
        if line.deal_id is not None:
            line.unit_source = f"deal:{line.deal_id}"
            line.adjustments = [{"source": "deal", "id": line.deal_id, "label": "Flash deal", "amount": "0.00"}]
        if line.counts_against_limit:
            line.allowance_key = line.limit_scope or f"sku:{line.sku_id}"
        line.save(update_fields=["total", "unit_source", "adjustments", "allowance_key"])


def backwards(apps, schema_editor):
    OrderLine = apps.get_model("orders", "OrderLine")
    for line in OrderLine.objects.all().iterator():
        source, _, target = line.unit_source.partition(":")
        line.deal_id = int(target) if source == "deal" else None
        line.counts_against_limit = bool(line.allowance_key)
        line.limit_scope = "" if line.allowance_key.startswith("sku:") else line.allowance_key
        if line.quantity:  # the charged price per unit, as the old lines kept it
            line.unit_price = (line.total / line.quantity).quantize(Decimal("0.01"))
        line.save(update_fields=["deal_id", "counts_against_limit", "limit_scope", "unit_price"])


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0005_order_refund"),
        ("streams", "0002_flashdeal_sku_protect"),
    ]

    operations = [
        migrations.AddField(
            model_name="orderline", name="adjustments", field=models.JSONField(blank=True, default=list)
        ),
        migrations.AddField(
            model_name="orderline",
            name="total",
            field=models.DecimalField(decimal_places=2, default=0, max_digits=12),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="orderline", name="unit_source", field=models.CharField(blank=True, default="", max_length=64)
        ),
        migrations.AddField(
            model_name="orderline", name="allowance_key", field=models.CharField(blank=True, default="", max_length=64)
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(model_name="orderline", name="deal"),
        migrations.RemoveField(model_name="orderline", name="counts_against_limit"),
        migrations.RemoveField(model_name="orderline", name="limit_scope"),
        migrations.AddIndex(
            model_name="orderline",
            index=models.Index(
                condition=~Q(unit_source=""), fields=["unit_source"], name="orders_line_unit_source"
            ),
        ),
    ]
