from celery import current_app, shared_task
from django.conf import settings


@shared_task(name="apps.nodes.tasks.relay_outbox", ignore_result=True)
def relay_outbox() -> str:
    """Beat's and the kicks' relay run (docs/edge.md, "Relay"). In embedded mode (no
    broker) it only wakes the relay thread: the embedded scheduler must not wait for the
    cloud."""
    if settings.NODE_ROLE != "edge":
        return "not_edge"
    from .relay import relay_kick, relay_run

    if current_app.conf.task_always_eager:
        relay_kick()
        return "kicked"
    return relay_run()["status"]
