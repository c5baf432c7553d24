"""How the experience reaches viewers (docs/experiments.md, "Delivery"; docs/streams.md,
"Snapshot extras and viewer relays"): registered into the streams app, which imports
nothing of this one.

- Every viewer socket's ``snapshot`` carries ``"experience": {slot: variant}``: every slot
  a running experiment in the stream's scope varies, ``control`` for a viewer outside the
  ramp; ``{}`` when none runs. A slot whose variant has a provider (apps/experiments/
  slots.py) adds the provider's fields too (e.g. the personalised pin order).
- ``experiment.paused``, ``experiment.stopped`` and ``experiment.rolled_back`` on a stream's
  group become ``{"type": "experience", "experience": {slot: "control"}}`` for every viewer:
  the standard experience, without a reload. Every experiment event heard on a stream drops
  this process's copy of the running experiments, so the next snapshot reads them again.
"""

from __future__ import annotations

from apps.streams.extras import snapshot_extra, viewer_relay

from .assignment import experience_for, forget_running
from .slots import CONTROL, payload_for


@snapshot_extra
def experience(viewer) -> dict:
    variants, _ = experience_for(shop_id=viewer.shop_id, user_id=viewer.user_id, session_key=viewer.session_key)
    out: dict = {"experience": variants}
    for slot, variant in variants.items():
        if variant != CONTROL:
            out.update(payload_for(slot, viewer=viewer, variant=variant))
    return out


@viewer_relay("experiment.paused", "experiment.stopped", "experiment.rolled_back")
def back_to_standard(message: dict) -> dict:
    forget_running()
    p = message["payload"]
    out = {"type": "experience", "experience": {p["slot"]: CONTROL}}
    if message["type"] == "experiment.rolled_back":
        out["reason"] = "rolled_back"
    return out


@viewer_relay("experiment.started", "experiment.resumed", "experiment.updated")
def changed(message: dict) -> None:
    # New assignments reach viewers at their next snapshot (a reconnect): one frame for all
    # viewers cannot carry per-viewer variants.
    forget_running()
    return None
