import pytest


@pytest.fixture
def unchecked_events(settings):
    """The delivery tests send throwaway event types (``test.pinged``, ...) with whatever
    payload the case needs; shapes are not what they test (test_event_schema.py does)."""
    settings.SPINE_CHECK_EVENTS = False
