"""One settings module, driven by environment variables and, optionally, a Glance config file.

Nothing set gives the embedded default: SQLite, django-q2's ORM broker and a filesystem store,
all under ``DATA_DIR`` (``var/``). ``DATABASE_URL`` and ``REDIS_URL`` switch to scale-out.
``GLANCE_API_CONF`` names an operator's ``glance-api.conf``: the options of
``imageservice.glance_conf.FILE_OPTIONS`` and the stores are read from it, and an environment
variable overrides the file. Bad values are reported by the system checks in
``imageservice.checks``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import dj_database_url

from imageservice import glance_conf, private_files
from imageservice.config_syntax import ConfigSyntaxError, parse_dict, split_list

BASE_DIR = Path(__file__).resolve().parent.parent
GLANCE_API_CONF = os.environ.get("GLANCE_API_CONF", "").strip()
GLANCE_CONF = glance_conf.load(GLANCE_API_CONF)


def setting_value(name: str) -> str | None:
    """The environment's value of ``name``, else the Glance file's option for it, else None."""
    if name in os.environ:
        return os.environ[name]
    place = glance_conf.FILE_OPTIONS.get(name)
    return GLANCE_CONF.option(*place) if place else None


def env_str(name: str, default: str = "") -> str:
    value = setting_value(name)
    return default.strip() if value is None else value.strip()


def env_bool(name: str, default: bool = False) -> bool:
    value = setting_value(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = (setting_value(name) or "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        # Left for the system check to report with a hint instead of a traceback.
        INVALID_SETTINGS[name] = value
        return default


def env_list(name: str, default: list[str]) -> list[str]:
    """An oslo.config list value: ``" a, ,b "`` → ``["a", "b"]``; from the Glance file also
    ``['a', 'b']``, as oslo.config reads Glance's list options."""
    if name in os.environ:
        return split_list(os.environ[name])
    value = setting_value(name)
    return default if value is None else split_list(value, bounds=True, quotes=True)


def env_mapping(name: str, pair_separator: str = ",") -> dict[str, str]:
    """An oslo.config dict value: ``"a:x,b:y"`` → ``{"a": "x", "b": "y"}``, no value empty."""
    value = os.environ.get(name, "")
    try:
        mapping = parse_dict(value, pair_separator=pair_separator)
    except ConfigSyntaxError:
        mapping = None
    if mapping is None or "" in mapping.values():
        # Left for the system check to report with a hint instead of a traceback; an empty
        # value would be a store without a path.
        INVALID_SETTINGS[name] = value
        return {}
    return mapping


BYTE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def env_bytes(name: str, default: int) -> int:
    """An integer with Glance's optional unit suffix: ``B``, ``KB``, ``MB``, ``GB``, ``TB``."""
    value = (setting_value(name) or "").strip()
    if not value:
        return default
    for unit in ("TB", "GB", "MB", "KB", "B"):
        if value.endswith(unit) and value[: -len(unit)].isdigit():
            return int(value[: -len(unit)]) * BYTE_UNITS[unit]
    if value.isdigit():
        return int(value)
    INVALID_SETTINGS[name] = value
    return default


INVALID_SETTINGS: dict[str, str] = {}

DATA_DIR = private_files.private_directory(
    Path(env_str("DATA_DIR", str(BASE_DIR / "var"))).resolve()
)

# Unset: generated once per installation and kept in DATA_DIR (0600). Nodes sharing sessions
# (the console behind a load balancer) need the same value: set it on each of them.
SECRET_KEY = env_str("SECRET_KEY") or private_files.installation_secret(DATA_DIR)
DEBUG = env_bool("DEBUG")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["*"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rules.apps.AutodiscoverRulesConfig",
    "django_q",
    "imageservice.identity",
    "imageservice.apps.ImageServiceConfig",
    "imageservice.audit",
    "images",
    "tasks",
    "importplugins",
    "imageservice.quotas",
]

MIDDLEWARE = [
    "imageservice.metrics.middleware.RequestMetricsMiddleware",
    "imageservice.middleware.VersionAliasMiddleware",
    "imageservice.middleware.RequestIdMiddleware",
    "imageservice.middleware.UndecodableURLMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "imageservice.events.context.EventContextMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Glance answers /v2/images/ with 404; a redirect would also drop PUT/POST bodies.
APPEND_SLASH = False

ROOT_URLCONF = "imageservice.urls"
WSGI_APPLICATION = "imageservice.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{DATA_DIR / 'imageservice.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        private_files.private_sqlite_database(Path(DATABASES["default"]["NAME"]))
    # WAL lets the API and the worker read while the other writes; the timeout rides out
    # short write locks instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "identity.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# gunicorn serves the console's CSS and JS through WhiteNoise, straight from the apps' static
# directories, so no collectstatic step is needed; STATIC_ROOT must exist for it all the same.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["imageservice.identity.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["imageservice.policy.permissions.GlancePolicy"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "imageservice.negotiation.IgnoreAcceptNegotiation",
    "EXCEPTION_HANDLER": "imageservice.errors.glance_exception_handler",
    # /openapi.json: drf-spectacular reads the views' declarations (imageservice/openapi).
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
}

SPECTACULAR_SETTINGS = {
    "OAS_VERSION": "3.1.0",
    # The document describes itself (imageservice/openapi/document.py).
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": False,
}

# --- Identity: local tokens, or Keystone through keystonemiddleware (docs/identity.md) --------
# "keystone" also from the Glance file's [paste_deploy] flavor = keystone(+cachemanagement).
AUTH_STRATEGY = (env_str("AUTH_STRATEGY") or glance_conf.auth_strategy(GLANCE_CONF)).lower()
KEYSTONE_AUTHTOKEN = glance_conf.keystone_authtoken(GLANCE_CONF, os.environ)
# How long the console trusts a project or user name it looked up in Keystone.
KEYSTONE_NAME_CACHE_SECONDS = env_int("KEYSTONE_NAME_CACHE_SECONDS", 300)
if AUTH_STRATEGY == "keystone":
    REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [
        "imageservice.identity.authentication.KeystoneAuthentication"
    ]
    AUTHENTICATION_BACKENDS = [
        *AUTHENTICATION_BACKENDS,
        "imageservice.identity.keystone_console.KeystoneBackend",
    ]

# --- Glance options (names follow glance-api.conf so operators recognise them) ---------------
PUBLIC_ENDPOINT = env_str("PUBLIC_ENDPOINT")
# How long a process trusts a validated token (keystonemiddleware's token_cache_time).
TOKEN_CACHE_SECONDS = env_int("TOKEN_CACHE_SECONDS", 5)
# How long a process trusts the property protection rules it read (0: read every request).
PROPERTY_RULES_CACHE_SECONDS = env_int("PROPERTY_RULES_CACHE_SECONDS", 2)
POLICY_FILE = env_str("POLICY_FILE")
LIMIT_PARAM_DEFAULT = env_int("LIMIT_PARAM_DEFAULT", 25)
API_LIMIT_MAX = env_int("API_LIMIT_MAX", 1000)
IMAGE_PROPERTY_QUOTA = env_int("IMAGE_PROPERTY_QUOTA", 128)
IMAGE_TAG_QUOTA = env_int("IMAGE_TAG_QUOTA", 128)
IMAGE_MEMBER_QUOTA = env_int("IMAGE_MEMBER_QUOTA", 128)
DISK_FORMATS = env_list(
    "DISK_FORMATS",
    ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"],
)
CONTAINER_FORMATS = env_list(
    "CONTAINER_FORMATS", ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]
)
IMAGE_SCHEMA_PROPERTIES_FILE = env_str("IMAGE_SCHEMA_PROPERTIES_FILE")
HASHING_ALGORITHM = env_str("HASHING_ALGORITHM", "sha512")
SHOW_IMAGE_DIRECT_URL = env_bool("SHOW_IMAGE_DIRECT_URL")
# Image data. Unset ENABLED_BACKENDS = one unnamed store under DATA_DIR/images (single-store
# Glance). Named stores (multi-store Glance), name → a directory (a file store; the
# environment's "fast:/srv/fast,cheap:/srv/cheap") or → glance_store options with their "type"
# (the Glance file's enabled_backends and store sections; images.storage.stores).
STORES_FROM_FILE = glance_conf.stores_from_file(GLANCE_CONF)
ENABLED_BACKENDS: dict[str, str | dict[str, str]] = (
    env_mapping("ENABLED_BACKENDS")
    if "ENABLED_BACKENDS" in os.environ
    else STORES_FROM_FILE.backends
)
DEFAULT_BACKEND = env_str("DEFAULT_BACKEND")
BACKEND_DESCRIPTIONS = env_mapping("BACKEND_DESCRIPTIONS", pair_separator=";")
IMAGE_SIZE_CAP = env_bytes("IMAGE_SIZE_CAP", 1024**4)
# Glance sets no limit on JSON bodies (its paste pipeline has no size limiter); Django's 2.5 MB
# default would refuse bodies Glance takes. The image data paths read wsgi.input themselves and
# are bounded by IMAGE_SIZE_CAP instead.
MAX_REQUEST_BODY_SIZE = env_bytes("MAX_REQUEST_BODY_SIZE", 16 * 1024**2)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_SIZE
USER_STORAGE_QUOTA = env_bytes("USER_STORAGE_QUOTA", 0)
# Every project's limits unless it has its own (console, `project_limits`): Glance's
# unified-limits resources, sizes in MiB, -1 for unlimited.
QUOTA_IMAGE_SIZE_TOTAL = env_int("QUOTA_IMAGE_SIZE_TOTAL", -1)
QUOTA_IMAGE_STAGE_TOTAL = env_int("QUOTA_IMAGE_STAGE_TOTAL", -1)
QUOTA_IMAGE_COUNT_TOTAL = env_int("QUOTA_IMAGE_COUNT_TOTAL", -1)
QUOTA_IMAGE_COUNT_UPLOADING = env_int("QUOTA_IMAGE_COUNT_UPLOADING", -1)
# Glance's use_keystone_limits: the limits come from Keystone's unified limits instead, read
# with the [oslo_limit] options (OSLO_LIMIT_<OPTION>), cached per process for a few seconds.
USE_KEYSTONE_LIMITS = env_bool("USE_KEYSTONE_LIMITS")
OSLO_LIMIT = glance_conf.oslo_limit(GLANCE_CONF, os.environ)
KEYSTONE_LIMITS_CACHE_SECONDS = env_int("KEYSTONE_LIMITS_CACHE_SECONDS", 10)
REQUIRE_IMAGE_FORMAT_MATCH = env_bool("REQUIRE_IMAGE_FORMAT_MATCH", True)
# Beyond Glance: data declared raw must be raw (or an MBR/GPT disk, an ISO), not qcow2, vmdk, ….
REQUIRE_RAW_FORMAT_MATCH = env_bool("REQUIRE_RAW_FORMAT_MATCH", False)
# An upload silent this long (no heartbeat) is taken for dead and its image made uploadable.
UPLOAD_STALE_SECONDS = env_int("UPLOAD_STALE_SECONDS", 300)
SHOW_MULTIPLE_LOCATIONS = env_bool("SHOW_MULTIPLE_LOCATIONS")

# --- Embedded Keystone v3 login at /identity/v3 (docs/identity.md, "Local mode") -------------
# Lifetime of the tokens it issues, in seconds (Keystone's [token] expiration).
TOKEN_EXPIRATION = env_int("TOKEN_EXPIRATION", 3600)
# The region its service catalog lists the image and identity endpoints in.
REGION_NAME = env_str("REGION_NAME", "RegionOne")
# Refused password logins inside a sliding LOCKOUT_DURATION (seconds) lock the account after
# LOCKOUT_FAILURE_ATTEMPTS (Keystone's [security_compliance] options) and turn the client address
# away after LOGIN_FAILURES_PER_ADDRESS; 0 switches either limit off.
LOCKOUT_FAILURE_ATTEMPTS = env_int("LOCKOUT_FAILURE_ATTEMPTS", 5)
LOCKOUT_DURATION = env_int("LOCKOUT_DURATION", 300)
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 20)

# --- Interoperable image import (v2.6) -------------------------------------------------------
ENABLE_IMAGE_IMPORT = env_bool("ENABLE_IMAGE_IMPORT", True)
ENABLED_IMPORT_METHODS = env_list(
    "ENABLED_IMPORT_METHODS", ["glance-direct", "web-download", "copy-image"]
)
NODE_STAGING_URI = (
    os.environ.get("NODE_STAGING_URI", "").strip()
    or glance_conf.staging_uri(GLANCE_CONF)
    or (DATA_DIR / "staging").as_uri()
)
# The staging area in an object store instead (images.storage.staging): the type and that
# type's glance_store options, from [os_glance_staging_store] and STAGING_STORE_<OPTION>.
STAGING_STORE_OPTIONS = glance_conf.staging_store_options(GLANCE_CONF, os.environ)
STAGING_STORE_TYPE = (STAGING_STORE_OPTIONS.pop("store_type", "") or "file").lower()
TASK_TIME_TO_LIVE = env_int("TASK_TIME_TO_LIVE", 48)  # hours, as Glance's task_time_to_live
IMPORT_STALE_SECONDS = env_int("IMPORT_STALE_SECONDS", 300)
# Run import jobs inline instead of through the queue (tests and single-process debugging).
IMPORT_JOBS_SYNC = env_bool("IMPORT_JOBS_SYNC")
# glance-image-import.conf equivalents, until the operator console holds them.
IMAGE_IMPORT_PLUGINS = env_list("IMAGE_IMPORT_PLUGINS", ["no_op"])
INJECT_METADATA_PROPERTIES = env_str("INJECT_METADATA_PROPERTIES")
IGNORE_USER_ROLES = env_list("IGNORE_USER_ROLES", ["admin"])
IMAGE_CONVERSION_OUTPUT_FORMAT = env_str("IMAGE_CONVERSION_OUTPUT_FORMAT", "raw")
IMPORT_ALLOWED_SCHEMES = env_list("IMPORT_ALLOWED_SCHEMES", ["http", "https"])
IMPORT_DISALLOWED_SCHEMES = env_list("IMPORT_DISALLOWED_SCHEMES", [])
IMPORT_ALLOWED_HOSTS = env_list("IMPORT_ALLOWED_HOSTS", [])
IMPORT_DISALLOWED_HOSTS = env_list("IMPORT_DISALLOWED_HOSTS", [])
IMPORT_ALLOWED_PORTS = env_list("IMPORT_ALLOWED_PORTS", ["80", "443"])
IMPORT_DISALLOWED_PORTS = env_list("IMPORT_DISALLOWED_PORTS", [])
WEB_DOWNLOAD_TIMEOUT = env_int("WEB_DOWNLOAD_TIMEOUT", 30)  # connect and read, seconds
# A whole web-download fetch (redirects included) ends after WEB_DOWNLOAD_DEADLINE seconds, or
# when fewer than WEB_DOWNLOAD_MIN_RATE bytes/s (0: no minimum) arrived over a rate window; a
# project runs at most WEB_DOWNLOAD_PROJECT_LIMIT (0: no limit) at once (docs/security.md).
WEB_DOWNLOAD_DEADLINE = env_int("WEB_DOWNLOAD_DEADLINE", 1800)
WEB_DOWNLOAD_MIN_RATE = env_bytes("WEB_DOWNLOAD_MIN_RATE", 16 * 1024)
WEB_DOWNLOAD_RATE_WINDOW = env_int("WEB_DOWNLOAD_RATE_WINDOW", 60)
WEB_DOWNLOAD_PROJECT_LIMIT = env_int("WEB_DOWNLOAD_PROJECT_LIMIT", 2)

# --- Job queue: ORM broker by default, Redis when REDIS_URL is set ---------------------------
REDIS_URL = env_str("REDIS_URL")
Q_CLUSTER = {
    "name": "imageservice",
    "workers": env_int("Q_WORKERS", 2),
    "timeout": env_int("Q_TIMEOUT", 3600),
    "retry": env_int("Q_RETRY", 3700),
    "max_attempts": 1,
    "catch_up": False,
    # The ORM broker sleeps this long after an empty check: the worst-case wait before an
    # import starts (0.05 s costs ~0.7 % idle CPU over the 0.2 s default; Redis needs none).
    "poll": env_int("Q_POLL_MS", 50) / 1000,
    "label": "Jobs",
}
# Job workers that may run web-downloads at once; the others stay free for glance-direct and
# copy-image, so slow sources never hold every worker. Further downloads wait for a slot.
WEB_DOWNLOAD_WORKERS = env_int("WEB_DOWNLOAD_WORKERS", max(Q_CLUSTER["workers"] - 1, 1))
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Nodes: roles, identity, health and stopping (docs/deployment.md) -------------------------
# How this node names itself on tasks, uploads and its registry row; ``serve`` sets it to
# "<host name>:<port>" for its children unless the operator chose one.
NODE_NAME = env_str("NODE_NAME") or socket.gethostname()
# The URL other nodes reach this one at (Glance's worker_self_reference_url), recorded as
# os_glance_stage_host on PUT /stage; unset: http://NODE_NAME.
WORKER_SELF_REFERENCE_URL = env_str("WORKER_SELF_REFERENCE_URL")
# A node's registry row is beaten this often, and taken for dead after NODE_STALE_SECONDS.
NODE_HEARTBEAT_SECONDS = env_int("NODE_HEARTBEAT_SECONDS", 15)
NODE_STALE_SECONDS = env_int("NODE_STALE_SECONDS", 60)
# GET /healthcheck answers 503 "DISABLED BY FILE" while this file exists (oslo.middleware's
# disable_by_file_path, as Glance's paste pipeline configures it).
HEALTHCHECK_DISABLE_BY_FILE_PATH = env_str("HEALTHCHECK_DISABLE_BY_FILE_PATH")
# A stop (SIGTERM) ends API and job worker within this many seconds: uploads may finish until
# shortly before it, running imports are handed back at once.
SHUTDOWN_GRACE_SECONDS = env_int("SHUTDOWN_GRACE_SECONDS", 30)
# A client must send its whole request line and headers within this many seconds; until then it
# holds no gunicorn thread (slow clients, docs/deployment.md).
REQUEST_HEADER_TIMEOUT = env_int("REQUEST_HEADER_TIMEOUT", 10)

# --- Observability: events, audit trail, notifications, metrics (docs/operator.md) ---------
# Audit events older than this many days are deleted by purge_audit (0: kept for ever).
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 90)
# Glance's notifications through oslo.messaging; off unless a messaging driver and a transport
# URL are set (GLANCE_API_CONF's [oslo_messaging_notifications] and [DEFAULT], or these).
NOTIFICATION_DRIVER = env_str("NOTIFICATION_DRIVER").lower()
NOTIFICATION_TOPICS = env_list("NOTIFICATION_TOPICS", ["notifications"])
NOTIFICATION_TRANSPORT_URL = env_str("NOTIFICATION_TRANSPORT_URL")
TRANSPORT_URL = env_str("TRANSPORT_URL")
CONTROL_EXCHANGE = env_str("CONTROL_EXCHANGE", "glance")
DEFAULT_PUBLISHER_ID = env_str("DEFAULT_PUBLISHER_ID", "image.localhost")
DISABLED_NOTIFICATIONS = env_list("DISABLED_NOTIFICATIONS", [])
# Notifications waiting for the bus per process; more are dropped (and counted).
NOTIFICATION_QUEUE_SIZE = env_int("NOTIFICATION_QUEUE_SIZE", 1000)
# Connection attempts per notification before it is given up (oslo.messaging's retry).
NOTIFICATION_RETRY = env_int("NOTIFICATION_RETRY", 1)
# Who may scrape /metrics: these addresses or networks, or anyone sending this bearer token.
METRICS_ALLOWED_ADDRESSES = env_list("METRICS_ALLOWED_ADDRESSES", ["127.0.0.1", "::1"])
METRICS_TOKEN = env_str("METRICS_TOKEN")
# The console's dashboard calls out queued and uploading images older than this.
DASHBOARD_WAITING_SECONDS = env_int("DASHBOARD_WAITING_SECONDS", 3600)
# How long the token lasts that the console's "Add image" page sends to the Image API.
CONSOLE_TOKEN_SECONDS = env_int("CONSOLE_TOKEN_SECONDS", 3600)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Blanks configured secrets, URL credentials and token headers in every record.
    "filters": {"redact_secrets": {"()": "imageservice.log_redaction.RedactSecrets"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact_secrets"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}
