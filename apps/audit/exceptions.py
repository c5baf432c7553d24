class AuditEntryImmutable(Exception):
    """Raised by any attempt to change or delete an audit entry: the log is append-only."""
