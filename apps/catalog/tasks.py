from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from .models import WebhookDelivery


@shared_task(name="apps.catalog.tasks.prune_webhook_deliveries")
def prune_webhook_deliveries(days: int = 7) -> int:
    """Forget delivery ids long after the 5-minute signature window has closed on them."""
    deleted, _ = WebhookDelivery.objects.filter(received_at__lt=timezone.now() - timedelta(days=days)).delete()
    return deleted
