from celery import shared_task

from .services import presence_publish, streams_tick


@shared_task(name="apps.streams.tasks.tick", ignore_result=True)
def tick() -> dict:
    """Every second: due streams and deals open and close on time; viewer counts go out."""
    done = streams_tick()
    done["presence"] = presence_publish()
    return done
