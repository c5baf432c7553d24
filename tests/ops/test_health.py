import pytest
from channels.layers import channel_layers

pytestmark = pytest.mark.django_db


def test_healthz_embedded(client, settings):
    settings.MQTT_URL = ""
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["db"] == "ok"
    assert body["channel_layer"] == "ok"
    assert body["broker"] == "eager" if settings.CELERY_TASK_ALWAYS_EAGER else "ok"
    assert body["mqtt"] == "disabled"


def test_healthz_names_a_dead_channel_layer(client, settings):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    channel_layers.backends.clear()
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["channel_layer"]
    assert body["db"] == "ok"
    assert body["channel_layer"].startswith("down:")


def test_healthz_names_a_dead_mqtt_broker(client, settings):
    settings.MQTT_URL = "mqtt://127.0.0.1:1"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "mqtt" in response.json()["down"]


@pytest.mark.redis
def test_healthz_on_real_redis(client, redis_channel_layer):
    body = client.get("/healthz").json()
    assert body["channel_layer"] == "ok"


@pytest.mark.redis
def test_healthz_checks_the_real_broker(client, settings):
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    assert client.get("/healthz").json()["broker"] == "ok"

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["down"] == ["broker"]


@pytest.mark.mqtt
def test_healthz_on_real_mqtt(client, settings, mqtt_url):
    settings.MQTT_URL = mqtt_url
    body = client.get("/healthz").json()
    assert body["mqtt"] == "ok"


def test_livez_answers_without_checking_services(client, settings):
    settings.MQTT_URL = "mqtt://127.0.0.1:1"  # a dead broker does not make the process dead
    response = client.get("/livez")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_healthz_does_not_leak_connection_details(client, settings):
    settings.MQTT_URL = "tcp://cues:S3cretPass@broker.internal:1883"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "S3cretPass" not in response.content.decode() and "broker.internal" not in response.content.decode()
    assert response.json()["mqtt"] == "down: ValueError"
