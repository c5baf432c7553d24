"""The consents' events (docs/events.md; creatorcommerce/spine/event_schema.py)."""

from creatorcommerce.spine.event_schema import BOOL, DATETIME, INT, Obj, OneOf, declare

from .models import Consent

# Never carries what was erased or any position: who, which consent, its new value.
declare(
    "consent.changed",
    Obj(user=INT, kind=OneOf(*Consent.Kind.values), granted=BOOL, changed_at=DATETIME, deleted=INT),
)
