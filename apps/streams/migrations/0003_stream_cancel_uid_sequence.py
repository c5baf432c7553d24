"""Drops can be cancelled, and carry what a calendar needs: one UID for life and a SEQUENCE
(docs/streams.md, "Creators' API for drops").

``uid`` is added in three steps (Django's pattern for a unique field with a callable
default): nullable, then one fresh UUID per existing stream, then unique and not null. A
single AddField would give every existing stream the same UUID.
"""

import uuid

from django.db import migrations, models


def fill_uids(apps, schema_editor):
    Stream = apps.get_model("streams", "Stream")
    for pk in Stream.objects.filter(uid__isnull=True).values_list("pk", flat=True).iterator():
        Stream.objects.filter(pk=pk).update(uid=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [
        ("streams", "0002_flashdeal_sku_protect"),
    ]

    operations = [
        migrations.AlterField(
            model_name="stream",
            name="status",
            field=models.CharField(
                choices=[("scheduled", "Scheduled"), ("live", "Live"), ("ended", "Ended"), ("cancelled", "Cancelled")],
                db_index=True,
                default="scheduled",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="stream",
            name="cancelled_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="stream",
            name="sequence",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="stream",
            name="uid",
            field=models.UUIDField(editable=False, null=True),
        ),
        migrations.RunPython(fill_uids, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="stream",
            name="uid",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
