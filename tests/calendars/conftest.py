"""Fixtures of the calendars tests: a creator's shop, a viewer signed in to the API, drops
scheduled through the streams service."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.streams.services import stream_create
from tests.factories import CreatorFactory, UserFactory


@pytest.fixture
def creator(db):
    return CreatorFactory()


@pytest.fixture
def shop(creator):
    return creator.shop


@pytest.fixture
def viewer(db):
    return UserFactory(time_zone="America/New_York")


@pytest.fixture
def as_viewer(api_client, viewer):
    api_client.force_login(viewer)
    return api_client


@pytest.fixture
def make_drop(shop):
    def make(starts_at=None, title="Friday drop", in_shop=None):
        return stream_create(
            shop=in_shop or shop, title=title, starts_at=starts_at or timezone.now() + timedelta(days=2)
        )

    return make


@pytest.fixture
def drop(make_drop):
    return make_drop()
