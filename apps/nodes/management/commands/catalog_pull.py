import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.nodes.catalog import catalog_pull


class Command(BaseCommand):
    help = (
        "On an edge: pull the shop's catalog and the venue's allocation from the cloud now and apply "
        "them (beat does this every SYNC_CATALOG_INTERVAL_SECONDS; docs/edge.md). Ignores a running backoff."
    )

    def handle(self, *args, **options):
        if settings.NODE_ROLE != "edge":
            raise CommandError("only an edge node (NODE_ROLE=edge) pulls a catalog")
        result = catalog_pull(force=True)
        if result["status"] != "applied":
            raise CommandError(f"catalog pull {result['status']}: {result.get('error', '')}")
        self.stdout.write(self.style.SUCCESS(f"catalog applied: {json.dumps(result['changes'], sort_keys=True)}"))
