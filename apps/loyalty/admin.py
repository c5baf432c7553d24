"""The loyalty admin (helper L1 owns this file; the moderation queue is admin_queue.py)."""

from . import admin_queue  # noqa: F401
