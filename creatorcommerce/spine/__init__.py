"""The event spine: the one way a state change becomes an event.

Services call ``emit()`` (``creatorcommerce.spine.events``) inside their transaction; on
commit the event goes to the Channels groups named and to the Celery handlers registered
for its type (``creatorcommerce.spine.registry.handler``).
"""
