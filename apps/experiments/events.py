"""The experiments' events and their payloads (docs/events.md, docs/experiments.md). No
payload names a viewer: exposures and conversions say which variant, stream and order."""

from creatorcommerce.spine.event_schema import INT, STR, ListOf, Nullable, Obj, declare

_ABOUT = {"experiment": INT, "shop": Nullable(INT), "slot": STR}

declare("experiment.created", Obj(**_ABOUT, name=STR))
declare("experiment.updated", Obj(**_ABOUT, changed=ListOf(STR)))
# Started, paused, resumed, stopped by a person (``reason``: what they wrote, may be empty).
for verb in ("started", "paused", "resumed", "stopped"):
    declare(f"experiment.{verb}", Obj(**_ABOUT, reason=STR))
# The guardrail rolled it back: ``reason`` is "error_rate" or "conversion_drop", ``detail``
# the numbers that tripped it. Sent to the viewers' groups of the streams in scope.
declare("experiment.rolled_back", Obj(**_ABOUT, reason=STR, detail=STR))
# A viewer's first exposure to the experiment in a stream (client-reported), and an order by
# an exposed viewer in such a stream (once per viewer and experiment).
declare("experiment.exposed", Obj(**_ABOUT, variant=STR, stream=INT))
declare("experiment.converted", Obj(**_ABOUT, variant=STR, stream=INT, order=INT))
# A client reported an error rendering the stream (``POST /api/v1/client-events/``);
# ``experiment``/``variant`` when it was attributed to a running experiment's variant.
declare(
    "client_error.reported",
    Obj(
        stream=INT,
        shop=INT,
        slot=Nullable(STR),
        variant=Nullable(STR),
        experiment=Nullable(INT),
        message=STR,
    ),
)
