"""CreatorCommerce: the project package (settings, ASGI, Celery, the event spine)."""

from .celery import app as celery_app

__all__ = ("celery_app",)
