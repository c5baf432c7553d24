from celery import current_app, shared_task
from celery.signals import worker_ready
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


@shared_task(name="apps.nodes.tasks.pull_catalog", ignore_result=True)
def pull_catalog() -> str:
    """Beat's catalog pull (docs/edge.md, "Catalog to the edge"). In embedded mode (no
    broker) it only wakes the pull thread: the embedded scheduler must not wait for the
    cloud."""
    if settings.NODE_ROLE != "edge":
        return "not_edge"
    from .catalog import catalog_pull, catalog_pull_kick

    if current_app.conf.task_always_eager:
        catalog_pull_kick()
        return "kicked"
    return catalog_pull()["status"]


@worker_ready.connect
def _pull_catalog_at_start(sender=None, **kwargs) -> None:
    """An edge's worker pulls the catalog as soon as it starts (beat's first tick is one
    interval later); a message to the broker, no network call to the cloud here."""
    if settings.NODE_ROLE == "edge":
        pull_catalog.delay()
