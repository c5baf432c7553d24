"""The accounts' events and their payloads (docs/events.md; creatorcommerce/spine/event_schema.py)."""

from creatorcommerce.spine.event_schema import INT, Obj, OneOf, declare

from .services import ROLES

declare("role.granted", Obj(user=INT, role=OneOf(*ROLES)))
declare("role.revoked", Obj(user=INT, role=OneOf(*ROLES)))
