"""schemathesis against /api/v1/schema/: every operation, as a creator and as a viewer, with
generated valid and invalid requests. No answer may be a 5xx, and every answer must match
the schema (its status, its content type, its body).

The app runs in-process through WSGI, in the test's own thread and database transaction, so
the data made here is what the requests see. Examples per operation are bounded (and
derandomized, so a CI run is reproducible) to keep the whole module under a minute.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.streams.models import Stream
from tests.factories import PASSWORD, CreatorFactory, make_buyer, make_sku

pytestmark = pytest.mark.django_db

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 10}


def _session_token(email: str) -> str:
    response = Client().post(
        "/_allauth/app/v1/auth/login",
        json.dumps({"email": email, "password": PASSWORD}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()["meta"]["session_token"]


@pytest.fixture
def wsgi_app(world):
    """The WSGI app in this thread; like Django's test client, requests keep the test's
    database connection (closing it at request end would end the test's transaction).
    After ``world``: Django's test client reconnects the signals when it is used."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def deployed(request):
    """Configured as docs/streams.md asks of a deployment: the media hook has its secret
    (without one, production answers the hook 503 media_hook_not_configured on purpose)."""
    django_settings = request.getfixturevalue("settings")
    django_settings.MEDIA_HOOK_SECRET = "schemathesis-media-hook-secret"
    return django_settings


@pytest.fixture
def world():
    """A creator with a product, a stream with a pin; a viewer who can buy: their session tokens."""
    creator = CreatorFactory()
    sku = make_sku(creator.shop, code="TEE-1", price="10.00", stock=50)
    stream = Stream.objects.create(shop=creator.shop, title="Friday drop", starts_at=timezone.now())
    from apps.streams.services import pin_add

    pin_add(stream=stream, sku=sku)
    viewer = make_buyer()
    return {"creator": _session_token(creator.email), "viewer": _session_token(viewer.email)}


def _run(app, session_token: str) -> list[str]:
    headers = {"X-Session-Token": session_token}
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", app)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, examples in EXAMPLES.items():

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure as is
                suppress_health_check=list(HealthCheck),
            )
            def check(case):
                response = case.call(headers=headers)
                case.validate_response(response, checks=CHECKS, headers=headers)

            try:
                check()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                continue
            except (Exception, FailureGroup) as exc:  # collect every operation's failures, then report them all
                failures.append(f"{operation.label} [{mode}]: {exc}")
    return failures


@pytest.mark.parametrize("role", ["creator", "viewer"])
def test_every_operation_answers_per_its_schema(deployed, wsgi_app, world, role):
    failures = _run(wsgi_app, world[role])
    assert not failures, "\n\n".join(failures)
