"""Stream-level slots (docs/experiments.md, "Stream-level slots"): registered into the
streams app (apps/streams/extras.py, ``stream_experience``), which the devices app asks
when a cue rule of such a slot matches (the LED urgency cue); neither imports the other.

``varies`` is this process's copy of the running experiments (no query while it is fresh);
``variant`` hashes the stream (``stream:<id>``) with the experiment's seed, as a viewer is
hashed, and records the stream's first exposure (``stream_exposure_record``)."""

from __future__ import annotations

from apps.streams.extras import stream_experience

from .assignment import stream_spec
from .services import stream_exposure_record
from .slots import SLOTS, STREAM


def varies(slot: str, shop_id: int) -> bool:
    return slot in SLOTS and SLOTS[slot].unit == STREAM and stream_spec(slot, shop_id) is not None


def variant(slot: str, *, shop_id: int, stream_id: int, at) -> str | None:
    spec = stream_spec(slot, shop_id)
    if spec is None:
        return None
    return stream_exposure_record(spec=spec, stream_id=stream_id, at=at)


stream_experience(varies=varies, variant=variant)
