"""The nodes app's events and their payloads (docs/events.md; creatorcommerce/spine/event_schema.py)."""

from creatorcommerce.spine.event_schema import INT, STR, Obj, declare

# The cloud registered an edge's key (manage.py node_add, or the admin).
declare("node.registered", Obj(node=STR, kid=STR))
# The cloud recorded a batch that held new events; ``acked_seq`` is what it answered.
declare("node.synced", Obj(node=STR, acked_seq=INT, max_seq=INT, events=INT))
# An edge took its venue's stock over (its first catalog pull): ``skus`` rows, ``units`` in all.
declare("node.venue_taken", Obj(node=STR, location=STR, skus=INT, units=INT))
