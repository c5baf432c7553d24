from creatorcommerce.errors import DomainError


class SyncUnauthorized(DomainError):
    """A batch or request the cloud cannot attribute to a registered node's key: nothing is
    recorded (docs/edge.md, "Ingest", "Catalog to the edge"). ``code`` says why:
    ``unknown_node``, ``invalid_signature``, and for requests ``auth_required`` or
    ``token_expired``."""

    status = 401
    code = "invalid_signature"
    message = "The batch is not signed by a registered node."


class SyncBatchInvalid(DomainError):
    """A verified batch whose body is not what the sync contract describes."""

    status = 400
    code = "invalid_batch"
    message = "The batch is malformed."


class SyncSeqConflict(DomainError):
    """A sequence number the cloud already holds for another event of the node (the edge's
    outbox was reset): nothing of the batch is recorded."""

    status = 409
    code = "seq_conflict"
    message = "A sequence number of this batch is already held for another event."


class NodeNotAssigned(DomainError):
    """A registered node not yet tied to a shop and venue (``node_add --shop --venue``): it
    has no catalog to pull."""

    status = 409
    code = "node_not_assigned"
    message = "This node has no shop and venue yet: register it with node_add --shop --venue."
