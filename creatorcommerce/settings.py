"""Settings: the one place that reads the environment.

Every variable is listed with a comment in `.env.example`. Defaults are the embedded ones
(SQLite in WAL mode, in-memory channel layer, Celery tasks run in-process), so the project
runs with no service installed; setting `DATABASE_URL`, `REDIS_URL` and `MQTT_URL` moves it
onto PostgreSQL, Redis and an MQTT broker.
"""

from __future__ import annotations

import importlib.util
import ipaddress
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local `.env` (never committed) is read if present; real environment variables win.
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

_DEV_SECRET_KEY = "insecure-dev-only-key-never-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off. Set SECRET_KEY (50+ random "
            "characters) or DEBUG=1 for local development."
        )
    SECRET_KEY = _DEV_SECRET_KEY
elif not DEBUG and (SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured("SECRET_KEY is too weak for production (use 50+ random characters).")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=["http://127.0.0.1:8000", "http://localhost:8000"])

# --- Node role -------------------------------------------------------------------------
NODE_ROLE = env.str("NODE_ROLE", default="cloud")
if NODE_ROLE not in {"cloud", "edge"}:
    raise ImproperlyConfigured(f"NODE_ROLE must be 'cloud' or 'edge', not {NODE_ROLE!r}.")
NODE_ID = env.str("NODE_ID", default="node-local")
# --- The sync plane (docs/edge.md) -------------------------------------------------------
# On an edge: the cloud its outbox relay sends to, e.g. https://cloud.example (required).
CLOUD_URL = env.str("CLOUD_URL", default="").rstrip("/")
if NODE_ROLE == "edge" and not CLOUD_URL:
    raise ImproperlyConfigured("NODE_ROLE=edge needs CLOUD_URL (the cloud the edge syncs to).")
# Events per signed batch the relay sends (it halves a batch that would exceed the body limit).
SYNC_BATCH_SIZE = env.int("SYNC_BATCH_SIZE", default=200)
# How often beat runs the relay (commits that record events kick it at once as well).
SYNC_INTERVAL_SECONDS = env.float("SYNC_INTERVAL_SECONDS", default=2.0)
# Backoff while the cloud is unreachable: doubles from the minimum up to the cap.
SYNC_BACKOFF_MIN_SECONDS = env.float("SYNC_BACKOFF_MIN_SECONDS", default=1.0)
SYNC_BACKOFF_MAX_SECONDS = env.float("SYNC_BACKOFF_MAX_SECONDS", default=30.0)
# While backing off after the link was down, a bare TCP connection to the cloud is tried
# this often; once it connects the relay goes on at once (0: wait out the backoff).
SYNC_PROBE_SECONDS = env.float("SYNC_PROBE_SECONDS", default=2.0)
# How long one batch's HTTP call may take (connect and answer) before it counts as failed.
SYNC_TIMEOUT_SECONDS = env.float("SYNC_TIMEOUT_SECONDS", default=15.0)
# How often beat has the edge pull its catalog from the cloud (and once at start).
SYNC_CATALOG_INTERVAL_SECONDS = env.float("SYNC_CATALOG_INTERVAL_SECONDS", default=60.0)
# On the cloud: how far an edge's signed request token's iat may be from now (replays).
SYNC_REQUEST_MAX_AGE_SECONDS = env.int("SYNC_REQUEST_MAX_AGE_SECONDS", default=120)
# On the cloud: the most events, and bytes, one batch may carry (more: 400 / 413).
SYNC_MAX_EVENTS = env.int("SYNC_MAX_EVENTS", default=1000)
SYNC_MAX_BODY_BYTES = env.int("SYNC_MAX_BODY_BYTES", default=2_000_000)

# --- Personalisation (docs/personalization.md) ----------------------------------------
# How often beat retrains the co-purchase model of each shop that has new orders.
PERSONALIZATION_TRAIN_INTERVAL_SECONDS = env.float("PERSONALIZATION_TRAIN_INTERVAL_SECONDS", default=900.0)
# A model without new orders is still retrained once it is this old (the recency decay moves on).
PERSONALIZATION_MAX_AGE_HOURS = env.float("PERSONALIZATION_MAX_AGE_HOURS", default=24.0)
# Orders older than this are not trained on; an order's weight halves every half-life.
PERSONALIZATION_WINDOW_DAYS = env.int("PERSONALIZATION_WINDOW_DAYS", default=365)
PERSONALIZATION_HALF_LIFE_DAYS = env.float("PERSONALIZATION_HALF_LIFE_DAYS", default=30.0)
# Neighbours kept per item.
PERSONALIZATION_TOP_K = env.int("PERSONALIZATION_TOP_K", default=20)
# How often (ms) a web process checks whether a model was retrained elsewhere (a generation
# number in the cache, as the fence cache does).
PERSONALIZATION_CACHE_CHECK_MS = env.int("PERSONALIZATION_CACHE_CHECK_MS", default=1000)

# --- Applications ----------------------------------------------------------------------
INSTALLED_APPS = [
    "daphne",
    "creatorcommerce.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "allauth.headless",
    "djgeojson",
    "creatorcommerce.apps.CoreConfig",
    "creatorcommerce.spine",
    "creatorcommerce.signing",
    "apps.accounts",
    "apps.audit",  # the append-only audit log (refunds; docs/audit.md)
    "apps.consents",  # explicit, reversible consents (location, calendar; docs/geofences.md)
    "apps.catalog",
    "apps.pricing",  # offers and quotes: one price for pins, quotes and buys (docs/pricing.md)
    "apps.orders",
    "apps.streams",
    "apps.geofences",  # pop-up venues, fences, presence, geo offers (docs/geofences.md)
    "apps.loyalty",  # badges, awards and their moderation, perks, tiers (docs/loyalty.md)
    "apps.personalization",  # co-purchase model ranking a viewer's pins (docs/personalization.md)
    "apps.calendars",  # preferences, follows, reminders at the right moment (docs/calendars.md)
    "apps.devices",  # rooms, devices, cue rules, cues over MQTT (docs/devices.md)
    "apps.nodes",  # edge nodes and the sync plane (docs/edge.md)
    "apps.experiments",  # experiments on micro-interactions, guardrails (docs/experiments.md)
]

MIDDLEWARE = [
    # First: every request's id and its route for the latency metric (creatorcommerce/observe.py).
    "creatorcommerce.observe.RequestObserverMiddleware",
    "creatorcommerce.guard.RequestGuardMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "creatorcommerce.middleware.JsonErrorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Pages and the admin in the signed-in user's time zone (the API stays in UTC).
    "apps.accounts.middleware.UserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "creatorcommerce.urls"
ASGI_APPLICATION = "creatorcommerce.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "creatorcommerce.context_processors.site",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN so
    # two writers queue on busy_timeout instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI every request's sync code runs in a thread of its own, so persistent
    # connections (CONN_MAX_AGE) would pile up (Django ticket #33497); a psycopg pool per
    # process reuses connections instead and saves a connect per request on the buy path.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Threads per process that run requests' sync code (creatorcommerce/handlers.py): at most
# this many requests run Python at once, each holding one database connection, so the
# default is the pool's size and no request waits in the GIL for a connection.
ASGI_SYNC_THREADS = env.int("ASGI_SYNC_THREADS", default=env.int("DB_POOL_MAX_SIZE", default=20))
# Admission control (creatorcommerce/admission.py, docs/overload.md): a process takes at
# most ADMISSION_MAX_IN_FLIGHT requests into that pool (running or waiting for a thread);
# past it a request is answered at once 503 overloaded with Retry-After instead of queueing.
# The last ADMISSION_CREATOR_RESERVE places are the creators' (control-room actions, the
# media server's hook): viewers are refused first. 0 turns admission control off. Sized
# with bench/overload.py (docs/overload.md, "How it was sized"): a saturated process
# answered as many buys a second with 4 in flight as with 24, and each request waited about
# the bound times a buy's ~4-7 ms; 8 keeps that near the buy's 100 ms, and its 6 for viewers
# take one browser's parallel requests. Raise it when requests wait on others (a real
# payment gateway's authorisation).
ADMISSION_MAX_IN_FLIGHT = env.int("ADMISSION_MAX_IN_FLIGHT", default=8)
ADMISSION_CREATOR_RESERVE = env.int("ADMISSION_CREATOR_RESERVE", default=2)
# A refusal's Retry-After: a whole number of seconds from 1 to this, at random (a crowd told
# the same second comes back in the same second).
ADMISSION_RETRY_AFTER_SECONDS = env.int("ADMISSION_RETRY_AFTER_SECONDS", default=2)
if (
    ADMISSION_MAX_IN_FLIGHT < 0
    or ADMISSION_CREATOR_RESERVE < 0
    or 0 < ADMISSION_MAX_IN_FLIGHT <= ADMISSION_CREATOR_RESERVE
):
    raise ImproperlyConfigured("ADMISSION_MAX_IN_FLIGHT must be >= 0 and ADMISSION_CREATOR_RESERVE below it.")
if ADMISSION_RETRY_AFTER_SECONDS < 1:
    raise ImproperlyConfigured("ADMISSION_RETRY_AFTER_SECONDS must be at least 1.")
# Sold-out from memory (creatorcommerce/soldout.py, apps/orders/soldout.py, docs/buying.md):
# a buy of a stock row or deal this process knows to be at zero answers 409 sold_out
# without the database. What it knows expires after SOLDOUT_MEMORY_SECONDS without news
# (then the next buy asks the database, which renews it): the bound on a stale "sold out"
# should an event be lost.
SOLDOUT_MEMORY = env.bool("SOLDOUT_MEMORY", default=True)
SOLDOUT_MEMORY_SECONDS = env.float("SOLDOUT_MEMORY_SECONDS", default=5.0)

# --- Redis, channel layer, cache -------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# Which channels-redis layer: "pubsub" (RedisPubSubChannelLayer: one PUBLISH per group
# message, each web process fans out to its own sockets) or "core" (RedisChannelLayer: a
# list per socket, so a group message is one write per member). At 2,000 viewers the
# benchmark measured p99 commit-to-socket 5.7x lower with pubsub (docs/performance.md).
CHANNEL_LAYER_BACKEND = env.str("CHANNEL_LAYER_BACKEND", default="pubsub")
if CHANNEL_LAYER_BACKEND not in {"core", "pubsub"}:
    raise ImproperlyConfigured("CHANNEL_LAYER_BACKEND must be 'core' or 'pubsub'.")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": (
            {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                # Known issue: with redis-py 8's 5 s socket timeout racing channels-redis's 5 s
                # blocking pop, idle consumers on this layer can die with 1011; a longer
                # socket_timeout fixes that but makes every disconnect wait for the pop.
                # Another reason the pub/sub layer is the default.
                "CONFIG": {"hosts": [REDIS_URL], "capacity": 1500, "expiry": 10},
            }
            if CHANNEL_LAYER_BACKEND == "core"
            else {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
        )
    }
    CACHES = {
        "default": {
            "BACKEND": "creatorcommerce.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"pool_class": "creatorcommerce.cache.SharedConnectionPool"},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Sessions (cookies and allauth's X-Session-Token) are read on every API call: read them
# from the cache, write through to the database so a cache flush logs nobody out.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --- Celery ----------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
# No broker: tasks run in-process, in the caller's thread, right after commit.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://localhost/"  # a host, or kombu logs a warning
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
if CELERY_BROKER_URL.startswith("redis://"):
    # kombu's Redis transport with one client per channel, not one per publish. (Not for
    # rediss://: kombu turns TLS on from the scheme's transport name.)
    CELERY_BROKER_TRANSPORT = "creatorcommerce.celery_transport:Transport"
CELERY_TIMEZONE = "UTC"
# Device cues have a queue of their own so that they never wait behind other work; it is
# declared here so that a plain `celery -A creatorcommerce worker` consumes both, and
# `-Q cues` makes a dedicated cue worker (docs/devices.md, "Dispatch").
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue("celery"), Queue("cues"))
CELERY_TASK_ROUTES = {"apps.devices.tasks.send_cue": {"queue": "cues"}}
# Celery's Django fixup closes the database connections around every task, and in a prefork
# child with the connection pool (above) the whole pool: each task then made a new pool and a
# new PostgreSQL connection (a third of a cue task's time, docs/performance.md). Its own
# closing is off (it runs once per this many tasks); creatorcommerce/celery.py gives
# connections back around each task as a request does (close_old_connections).
CELERY_DB_REUSE_MAX = 2**31
# --- Experiments (docs/experiments.md) -------------------------------------------------------
# How often the guardrails look at every running experiment (beat).
EXPERIMENT_GUARDRAIL_SECONDS = env.float("EXPERIMENT_GUARDRAIL_SECONDS", default=5.0)
# Exposed viewers of a variant who reported a client error, as a share of its exposed
# viewers, above which it rolls back (once at least EXPERIMENT_ERROR_MIN_COUNT of them).
EXPERIMENT_ERROR_RATE_MAX = env.float("EXPERIMENT_ERROR_RATE_MAX", default=0.05)
EXPERIMENT_ERROR_MIN_COUNT = env.int("EXPERIMENT_ERROR_MIN_COUNT", default=5)
# The conversion guardrail's sequential test (mSPRT): false-alarm level over the whole run,
# mixing standard deviation on the rate difference, exposed viewers per arm before it looks.
EXPERIMENT_GUARDRAIL_ALPHA = env.float("EXPERIMENT_GUARDRAIL_ALPHA", default=0.05)
EXPERIMENT_MSPRT_TAU = env.float("EXPERIMENT_MSPRT_TAU", default=0.05)
EXPERIMENT_MIN_EXPOSURES = env.int("EXPERIMENT_MIN_EXPOSURES", default=100)
# How stale a web process's copy of the running experiments may get (the snapshot's hot
# path reads it; a change committed or heard on a stream drops it at once).
EXPERIMENTS_REFRESH_SECONDS = env.float("EXPERIMENTS_REFRESH_SECONDS", default=1.0)
# POST /api/v1/client-events/: batches per client (signed-in user, else address).
CLIENT_EVENTS_RATE_LIMIT = env.str("CLIENT_EVENTS_RATE_LIMIT", default="60/min")
CLIENT_EVENTS_MAX = 100

# Periodic tasks are declared in code, here, next to the tasks they start.
CELERY_BEAT_SCHEDULE: dict = {
    "spine-redeliver": {
        "task": "creatorcommerce.spine.tasks.redeliver_pending",
        "schedule": timedelta(seconds=60),
    },
    "streams-tick": {
        "task": "apps.streams.tasks.tick",
        "schedule": timedelta(seconds=1),
    },
    "orders-release-expired-reservations": {
        "task": "apps.orders.tasks.release_expired_reservations",
        "schedule": timedelta(seconds=60),
    },
    "catalog-prune-webhook-deliveries": {
        "task": "apps.catalog.tasks.prune_webhook_deliveries",
        "schedule": timedelta(hours=6),
    },
    "geofences-dwell": {
        "task": "apps.geofences.tasks.fire_dwell",
        "schedule": timedelta(seconds=30),
    },
    "orders-prune-idempotency-keys": {
        "task": "apps.orders.tasks.prune_idempotency_keys",
        "schedule": timedelta(hours=1),
    },
    "calendars-dispatch-reminders": {
        "task": "apps.calendars.tasks.dispatch_reminders",
        "schedule": timedelta(seconds=15),
    },
    "orders-capture-offline": {
        "task": "apps.orders.tasks.capture_offline_orders",
        "schedule": timedelta(seconds=15),
    },
    "devices-sweep-cues": {
        "task": "apps.devices.tasks.sweep_cues",
        "schedule": timedelta(seconds=1),
    },
    # The co-purchase model of each shop with new orders (docs/personalization.md).
    "personalization-train": {
        "task": "apps.personalization.tasks.train",
        "schedule": timedelta(seconds=PERSONALIZATION_TRAIN_INTERVAL_SECONDS),
    },
    # Experiments' guardrails: a tripped one is rolled back (docs/experiments.md).
    "experiments-guardrails": {
        "task": "apps.experiments.tasks.evaluate_guardrails",
        "schedule": timedelta(seconds=EXPERIMENT_GUARDRAIL_SECONDS),
    },
    # On an edge, the outbox relay (docs/edge.md); elsewhere the task returns at once.
    "nodes-relay": {
        "task": "apps.nodes.tasks.relay_outbox",
        "schedule": timedelta(seconds=SYNC_INTERVAL_SECONDS),
    },
    # On an edge, the catalog pull (docs/edge.md, "Catalog to the edge"); a worker also runs
    # it once when it starts, the embedded scheduler at its first tick.
    "nodes-catalog": {
        "task": "apps.nodes.tasks.pull_catalog",
        "schedule": timedelta(seconds=SYNC_CATALOG_INTERVAL_SECONDS),
    },
}

# --- Orders ----------------------------------------------------------------------------
# The payment gateway class (apps/orders/payments.py explains how to plug in a real one).
PAYMENT_GATEWAY = env.str("PAYMENT_GATEWAY", default="apps.orders.payments.TestGateway")
# A reservation whose payment never completed (the process died) is released after this.
ORDER_RESERVATION_TTL_SECONDS = env.int("ORDER_RESERVATION_TTL_SECONDS", default=600)
# Idempotency keys are kept at least this long (the contract promises 24 h).
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=48)
ORDER_MAX_QUANTITY = env.int("ORDER_MAX_QUANTITY", default=100)
# Offline selling (docs/buying.md, "Offline selling"): on an edge node (NODE_ROLE=edge)
# whose gateway cannot be reached, a buy whose total is at most this amount (in the
# shop's currency) is accepted for later capture ("accepted_offline"); a larger one is
# refused (503 offline_over_floor_limit). 0 turns offline selling off. No effect on the cloud.
try:
    OFFLINE_FLOOR_LIMIT = Decimal(env.str("OFFLINE_FLOOR_LIMIT", default="50.00")).quantize(Decimal("0.01"))
except InvalidOperation as exc:
    raise ImproperlyConfigured("OFFLINE_FLOOR_LIMIT must be an amount, e.g. 50.00.") from exc
if not OFFLINE_FLOOR_LIMIT.is_finite() or OFFLINE_FLOOR_LIMIT < 0:
    raise ImproperlyConfigured("OFFLINE_FLOOR_LIMIT must be an amount of 0 or more, e.g. 50.00.")
# The later capture of accepted-offline orders is retried after this many seconds, doubled
# per failed attempt up to OFFLINE_CAPTURE_MAX_BACKOFF_SECONDS (beat starts the sweep).
OFFLINE_CAPTURE_BACKOFF_SECONDS = env.int("OFFLINE_CAPTURE_BACKOFF_SECONDS", default=30)
OFFLINE_CAPTURE_MAX_BACKOFF_SECONDS = env.int("OFFLINE_CAPTURE_MAX_BACKOFF_SECONDS", default=3600)
# The bundled TestGateway only: while this file exists, the gateway "cannot be reached"
# (authorize, capture, void and refund raise ConnectionError), so a demo can cut it with
# `manage.py test_gateway down` and bring it back with `up`. Empty: never unreachable.
TEST_GATEWAY_DOWN_FILE = env.str("TEST_GATEWAY_DOWN_FILE", default="")

# --- Streams ---------------------------------------------------------------------------
# Counter events (stock, deals) leave a process at most once per this many seconds per
# group and SKU; the newest value always goes (creatorcommerce/spine/fanout.py).
SPINE_COALESCE_SECONDS = env.float("SPINE_COALESCE_SECONDS", default=0.1)
# How long the enqueueing thread waits after a commit for more to go in the same broker
# message (creatorcommerce/spine/events.py, _Enqueuer); 0 = publish each commit at once.
SPINE_ENQUEUE_LINGER_SECONDS = env.float("SPINE_ENQUEUE_LINGER_SECONDS", default=0.005)
# Event shapes as contracts: emit() checks each payload against its event type's declared
# schema (creatorcommerce/spine/event_schema.py, docs/events.md) and raises on a mismatch.
# On in DEBUG and in tests (pyproject.toml); off by default in production, the buy's hot path.
SPINE_CHECK_EVENTS = env.bool("SPINE_CHECK_EVENTS", default=DEBUG)
# Viewer tokens only open a WebSocket; pages fetch a fresh one for every (re)connect.
VIEWER_TOKEN_TTL_SECONDS = env.int("VIEWER_TOKEN_TTL_SECONDS", default=300)
# Stock and deal counters reach a viewer at most this many times a second.
STREAM_PUSHES_PER_SECOND = env.int("STREAM_PUSHES_PER_SECOND", default=10)
# A client sending more than this many messages in 10 seconds is disconnected (4029).
STREAM_CLIENT_MESSAGES_PER_10S = env.int("STREAM_CLIENT_MESSAGES_PER_10S", default=50)

# --- Streams: presence that survives crashes, the media server's hook (docs/streams.md) ---
# A web process refreshes a heartbeat every third of this; the viewers of a process that
# died stop counting this many seconds after its last beat.
STREAM_PRESENCE_TTL_SECONDS = env.int("STREAM_PRESENCE_TTL_SECONDS", default=15)
# A viewer socket's text frame longer than this closes the socket (4400).
STREAM_CLIENT_MESSAGE_MAX_CHARS = env.int("STREAM_CLIENT_MESSAGE_MAX_CHARS", default=1024)
# The shared secret the media server sends with every hook call (?secret=... in MediaMTX's
# authHTTPAddress). Required when DEBUG is off: without it the hook refuses every call.
MEDIA_HOOK_SECRET = env.str("MEDIA_HOOK_SECRET", default="")
# Wrong ingest tokens a publishing client address may try in 10 minutes before its
# publishes are refused (429) for the rest of the window.
MEDIA_HOOK_FAILURES_PER_10MIN = env.int("MEDIA_HOOK_FAILURES_PER_10MIN", default=20)

# Without a broker, the web process runs the beat schedule itself (creatorcommerce/scheduler.py).
EMBEDDED_SCHEDULER = env.bool("EMBEDDED_SCHEDULER", default=CELERY_TASK_ALWAYS_EAGER)

# --- MQTT (device cues) ----------------------------------------------------------------
MQTT_URL = env.str("MQTT_URL", default="")
# How long a cue's publish waits for the broker (connection, then PUBACK) before its task
# retries; reconnect backoff of the long-lived clients (docs/devices.md).
DEVICES_PUBACK_TIMEOUT_SECONDS = env.float("DEVICES_PUBACK_TIMEOUT_SECONDS", default=2.0)
MQTT_RECONNECT_MIN_SECONDS = env.float("MQTT_RECONNECT_MIN_SECONDS", default=0.5)
MQTT_RECONNECT_MAX_SECONDS = env.float("MQTT_RECONNECT_MAX_SECONDS", default=30.0)
# Without MQTT_URL, cues go to the log driver and a simulated device acks each at once
# (the demo still shows acks); set to 0 to leave them sent until they time out.
DEVICES_SIMULATE_IN_PROCESS = env.bool("DEVICES_SIMULATE_IN_PROCESS", default=not MQTT_URL)
# How long a process trusts its list of event types that have cue rules (a rule added in
# another process takes effect in this one within it; docs/devices.md, "Cue rules").
DEVICES_RULE_TYPES_TTL_SECONDS = env.float("DEVICES_RULE_TYPES_TTL_SECONDS", default=5.0)

# --- Auth and allauth ------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "apps.accounts.backends.ModelBackend",
    "apps.accounts.backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
# "optional": a new viewer can buy before clicking any e-mail link (docs/architecture.md, "Accounts and roles").
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_LOGOUT_ON_GET = False
HEADLESS_CLIENTS = ("app", "browser")
HEADLESS_SERVE_SPECIFICATION = False
# One session read per X-Session-Token lookup, not two (apps/accounts/tokens.py).
HEADLESS_TOKEN_STRATEGY = "apps.accounts.tokens.SessionTokenStrategy"
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="CreatorCommerce <noreply@localhost>")

# --- Users' time zones (accounts) -------------------------------------------------------
# Signup keeps the browser's zone (a hidden field, apps/accounts/forms.py); pages and the
# admin are shown in the user's zone by apps.accounts.middleware.UserTimeZoneMiddleware
# (in MIDDLEWARE). TIME_ZONE below is the zone of new users and anonymous visitors.
ACCOUNT_SIGNUP_FORM_CLASS = "apps.accounts.forms.SignupTimeZoneForm"

# --- Calendars (docs/calendars.md) -------------------------------------------------------
# The site's public address, for links in messages sent without a request (a reminder's
# e-mail and in-app notification: the drop's page, the one-click stop link).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- Geofences (docs/geofences.md) -------------------------------------------------------
# Pings whose ``at`` is older than this are answered ``ignored: stale`` and change nothing.
GEO_PING_MAX_AGE_SECONDS = env.int("GEO_PING_MAX_AGE_SECONDS", default=300)
# Pings less accurate than this (metres) are answered ``ignored: inaccurate``.
GEO_PING_MAX_ACCURACY_M = env.float("GEO_PING_MAX_ACCURACY_M", default=150.0)
# How far in the future a ping's ``at`` may be (clock skew) before it is a 400.
GEO_PING_MAX_SKEW_SECONDS = env.int("GEO_PING_MAX_SKEW_SECONDS", default=30)
# A viewer inside who stops pinging still counts as inside for this long (the dwell beat
# fires dwell for them within it); after it the beat leaves them be (docs/geofences.md).
GEO_PRESENCE_SILENT_SECONDS = env.int("GEO_PRESENCE_SILENT_SECONDS", default=900)
# How often (ms) a process checks whether another one changed a venue (the fence cache's
# generation number in the cache; docs/geofences.md, "Fence cache").
GEO_FENCE_CACHE_CHECK_MS = env.int("GEO_FENCE_CACHE_CHECK_MS", default=1000)
# The admin's fence map tiles, e.g. "https://tile.openstreetmap.org/{z}/{x}/{y}.png" (an
# operator's choice: nothing is fetched from the internet by default). Empty: a blank base.
GEOFENCES_TILE_URL = env.str("GEOFENCES_TILE_URL", default="")
GEOFENCES_TILE_ATTRIBUTION = env.str("GEOFENCES_TILE_ATTRIBUTION", default="")
# The stream page's "Simulate my position" control (docs/geofences.md, "On the storefront"):
# a viewer picks a spot inside or outside a venue's fence instead of sharing a real position.
# For the demo and for trying a pop-up from a desk; on by default only with DEBUG.
GEO_SIMULATE_POSITION = env.bool("GEO_SIMULATE_POSITION", default=DEBUG)

# --- Client addresses behind a reverse proxy (creatorcommerce/clientip.py) ----------------
# Addresses or CIDR networks of the proxies in front of the web processes. X-Forwarded-For is
# believed only from them (read from the right, skipping trusted hops); every per-client
# limit (allauth's, DRF's throttles, the media hook's) keys on the address this yields.
# Empty: clients connect directly, X-Forwarded-For is ignored. docs/operations.md.
# Blank entries (a trailing comma) are skipped, as creatorcommerce/clientip.py skips them.
TRUSTED_PROXIES = [entry.strip() for entry in env.list("TRUSTED_PROXIES", default=[]) if entry.strip()]
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy.strip(), strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_proxy!r} is not an address or a network.") from _exc
# allauth keys its rate limits on the adapter's get_client_ip: ours asks clientip.
ACCOUNT_ADAPTER = "creatorcommerce.account_adapter.AccountAdapter"

# --- REST API --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "creatorcommerce.authentication.SessionTokenAuthentication",
        "creatorcommerce.authentication.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "creatorcommerce.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "creatorcommerce.schema.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "creatorcommerce.throttling.AnonThrottle",
        "creatorcommerce.throttling.UserThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_ANON_RATE", default="300/min"),
        "user": env.str("API_USER_RATE", default="1200/min"),
        "buy": env.str("BUY_RATE_LIMIT", default="120/min"),
        # Per viewer: a phone pings every few seconds at most (docs/geofences.md).
        "geo_ping": env.str("GEO_PING_RATE_LIMIT", default="30/min"),
        # Per client: a page reports its exposures and errors in batches (docs/experiments.md).
        "client_events": CLIENT_EVENTS_RATE_LIMIT,
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CreatorCommerce API",
    "DESCRIPTION": "Public API v1 of CreatorCommerce (see docs/ and shared design contract).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name for a choice set several serializers share (the public stream and the
    # creators' drop both have the stream's status).
    "ENUM_NAME_OVERRIDES": {
        "StreamStatusEnum": "apps.streams.models.Stream.Status",
        "ExperimentStatusEnum": "apps.experiments.models.Experiment.Status",
    },
}

# --- i18n, static ----------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Leaflet and Leaflet.draw come from the django-leaflet package's static files (served by
# us, never a CDN). The package is not an installed app: its admin and form widget import
# GeoDjango, which needs the GDAL system library (apps/geofences/fields.py).
STATICFILES_DIRS = [
    BASE_DIR / "static",
    (
        "leaflet",
        Path(importlib.util.find_spec("leaflet").origin).parent / "static" / "leaflet",
    ),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security (production) -------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
# Probes and Prometheus talk to the servers' own http address, behind the TLS proxy.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^livez$", r"^metrics$"]

# --- Metrics (docs/operations.md, "Metrics") --------------------------------------------------
# GET /metrics answers these client addresses (or networks; the address creatorcommerce/clientip.py
# finds, so behind a trusted proxy the forwarded one) and, when METRICS_TOKEN is set, any client
# sending "Authorization: Bearer <METRICS_TOKEN>". Everyone else: 403 metrics_forbidden.
METRICS_ALLOWED_IPS = [entry.strip() for entry in env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])]
METRICS_ALLOWED_IPS = [entry for entry in METRICS_ALLOWED_IPS if entry]
for _entry in METRICS_ALLOWED_IPS:
    try:
        ipaddress.ip_network(_entry, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS: {_entry!r} is not an address or a network.") from _exc
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Several server processes on one machine add their figures up through this directory
# (prometheus-client reads the variable itself); it must exist and be emptied before the
# processes start, never while they run (docs/operations.md). Unset: one process's figures.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
if PROMETHEUS_MULTIPROC_DIR and not Path(PROMETHEUS_MULTIPROC_DIR).is_dir():
    raise ImproperlyConfigured(f"PROMETHEUS_MULTIPROC_DIR={PROMETHEUS_MULTIPROC_DIR!r} is not a directory.")

# --- Logs (docs/operations.md, "Logs") ------------------------------------------------------
# "plain": the human-readable line (the demo's); "json": one JSON object per line, with the
# request id of the request (or the spine event's handler) that wrote it.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'plain' or 'json'.")
# One line per answered request (method, route, status, duration, request id) on the logger
# creatorcommerce.access. On by default with JSON logs; the demo's console has daphne's own.
ACCESS_LOG = env.bool("ACCESS_LOG", default=LOG_FORMAT == "json")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "creatorcommerce.logs.RequestIdFilter"}},
    "formatters": {
        "plain": {
            "()": "creatorcommerce.logs.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        },
        "json": {"()": "creatorcommerce.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # The embedded scheduler runs a task every second; one line each is noise.
        "celery.app.trace": {"level": "WARNING" if EMBEDDED_SCHEDULER else "INFO"},
    },
}
