from celery import shared_task

from .services import idempotency_records_prune, orders_release_expired


@shared_task(name="apps.orders.tasks.release_expired_reservations")
def release_expired_reservations() -> int:
    """Give back the stock of reservations whose buy never completed (beat, every minute)."""
    return orders_release_expired()


@shared_task(name="apps.orders.tasks.prune_idempotency_keys")
def prune_idempotency_keys() -> int:
    return idempotency_records_prune()
