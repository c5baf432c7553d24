"""Spine handlers of the geofences app."""

from creatorcommerce.spine.registry import handler

from .fence_cache import bump_generation


@handler("venue.updated", "venue.deleted")
def venues_changed(event) -> None:
    """Wherever the event is handled (a worker, or another node once events are synced),
    bump the fence cache's generation so that every process reloads its venues
    (docs/geofences.md, "Fence cache"). A redelivery bumps again: one extra reload, no harm."""
    bump_generation()
