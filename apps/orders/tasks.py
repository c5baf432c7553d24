from celery import shared_task

from .services import idempotency_records_prune, orders_capture_offline, orders_release_expired


@shared_task(name="apps.orders.tasks.release_expired_reservations")
def release_expired_reservations() -> int:
    """Give back the stock of reservations whose buy never completed (beat, every minute)."""
    return orders_release_expired()


@shared_task(name="apps.orders.tasks.prune_idempotency_keys")
def prune_idempotency_keys() -> int:
    return idempotency_records_prune()


@shared_task(name="apps.orders.tasks.capture_offline_orders")
def capture_offline_orders() -> dict[str, int]:
    """Take the payments of orders an edge node accepted offline, once the gateway answers
    (beat, every 15 s; each order backs off on its own; docs/buying.md, "Offline selling")."""
    return orders_capture_offline()
