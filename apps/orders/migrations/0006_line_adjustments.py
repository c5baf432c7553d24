"""Order lines say how their price came about (adjustments, total) and where their units
and per-buyer allowance came from in generic terms (unit_source, allowance_key), instead of
a foreign key to a flash deal and a limit scope: orders no longer know about streams.

Lines bought in a flash deal before this change kept the deal's price as their unit price
and not the list price of the time (which was never stored), so their adjustment names the
deal with an amount of 0.00 and their total stays what was charged (docs/buying.md)."""

from django.db import migrations, models
from django.db.models import CharField, DecimalField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Cast, Concat, Round


def _constraints_now(schema_editor):
    """PostgreSQL checks the lines' deferred foreign keys at once, so that the ALTER TABLEs
    after these UPDATEs (in the same transaction) find no pending trigger events."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def forwards(apps, schema_editor):
    # Set-based: a few UPDATEs (one per flash deal with lines), not one per line; the table
    # is locked while this runs, and buys insert lines.
    _constraints_now(schema_editor)
    OrderLine = apps.get_model("orders", "OrderLine")
    money = DecimalField(max_digits=12, decimal_places=2)
    OrderLine.objects.update(total=ExpressionWrapper(F("unit_price") * F("quantity"), output_field=money))
    limited = OrderLine.objects.filter(counts_against_limit=True)
    limited.filter(limit_scope="").update(allowance_key=Concat(Value("sku:"), Cast("sku_id", CharField())))
    limited.exclude(limit_scope="").update(allowance_key=F("limit_scope"))
    deals = OrderLine.objects.filter(deal__isnull=False).values_list("deal_id", flat=True).distinct()
    for deal_id in list(deals):
        OrderLine.objects.filter(deal_id=deal_id).update(
            unit_source=f"deal:{deal_id}",
            adjustments=[{"source": "deal", "id": deal_id, "label": "Flash deal", "amount": "0.00"}],
        )


def backwards(apps, schema_editor):
    _constraints_now(schema_editor)
    OrderLine = apps.get_model("orders", "OrderLine")
    money = DecimalField(max_digits=12, decimal_places=2)
    # The charged price per unit, as the old lines kept it (rounded to the cent).
    OrderLine.objects.update(
        unit_price=Round(ExpressionWrapper(F("total") / F("quantity"), output_field=money), 2),
        counts_against_limit=~Q(allowance_key=""),
    )
    OrderLine.objects.filter(allowance_key__startswith="deal:").update(limit_scope=F("allowance_key"))
    sources = OrderLine.objects.filter(unit_source__startswith="deal:").values_list("unit_source", flat=True)
    for source in list(sources.distinct()):
        OrderLine.objects.filter(unit_source=source).update(deal_id=int(source.partition(":")[2]))


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
