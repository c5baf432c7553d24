"""streams 0003 (cancelled drops, ``uid``, ``sequence``) on streams of the old shape: each
gets its own UID (one AddField with a callable default would give every row the same one),
a sequence of 0 and keeps its status; and back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from tests.factories import CreatorFactory

pytestmark = pytest.mark.django_db(transaction=True)  # migrations run DDL

BEFORE = [("streams", "0002_flashdeal_sku_protect")]
AFTER = [("streams", "0003_stream_cancel_uid_sequence")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.fixture
def at_the_latest():
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_existing_streams_get_one_uid_each_and_keep_their_status(at_the_latest):
    shop = CreatorFactory().shop
    old = migrate(BEFORE)
    OldStream = old.get_model("streams", "Stream")
    now = timezone.now()
    ids = [
        OldStream.objects.create(
            shop_id=shop.pk, title=f"Old {i}", starts_at=now + timedelta(hours=i), status=status
        ).pk
        for i, status in enumerate(["scheduled", "live", "ended"])
    ]

    Stream = migrate(AFTER).get_model("streams", "Stream")
    rows = list(Stream.objects.filter(pk__in=ids).order_by("pk").values_list("status", "sequence", "uid"))
    assert [(status, sequence) for status, sequence, _ in rows] == [("scheduled", 0), ("live", 0), ("ended", 0)]
    uids = [uid for _, _, uid in rows]
    assert None not in uids and len(set(uids)) == 3
    assert Stream.objects.create(shop_id=shop.pk, title="New", starts_at=now).uid not in uids

    OldStream = migrate(BEFORE).get_model("streams", "Stream")
    assert OldStream.objects.filter(pk__in=ids).count() == 3
