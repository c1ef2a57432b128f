"""Centralino settings: one file, driven by environment variables.

With no environment at all it runs the embedded default: SQLite, the in-memory channel layer,
eager Celery and the telephony engine inside the web process. DATABASE_URL and REDIS_URL switch
to PostgreSQL and Redis (the distributed mode of the Procfile).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str = "False") -> bool:
    return os.getenv(name, default).strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: str) -> int:
    return int(os.getenv(name, default))


def envfloat(name: str, default: str) -> float:
    return float(os.getenv(name, default))


def _port_range(value: str) -> tuple[int, int]:
    low, _, high = value.partition("-")
    return int(low), int(high or low)


# Media files (voicemail, announcements), the SQLite file of the embedded default, the demo
# credentials and the install's secret key: readable by this user only.
VAR_DIR = Path(os.getenv("CENTRALINO_VAR", BASE_DIR / "var"))
VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)


def _install_secret_key() -> str:
    """A SECRET_KEY drawn once per install and kept in var/ (processes of one machine share it)."""
    path = VAR_DIR / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        key = secrets.token_urlsafe(50)
        out.write(key)
    return key


SECRET_KEY = os.getenv("SECRET_KEY") or _install_secret_key()
# Off unless asked for: a PBX on a LAN must not show Django's debug pages (they list settings).
DEBUG = envbool("DEBUG", "False")
CSRF_TRUSTED_ORIGINS = [o for o in os.getenv("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "pbx",
    "stats",
    "contacts",
    "operator_panel",
    "portal",
    "selfcare",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "operator_panel.password_gate.PasswordGate",
]

ROOT_URLCONF = "operator_panel.urls"

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
                "portal.context.sections",
            ],
        },
    },
]

WSGI_APPLICATION = "operator_panel.wsgi.application"
ASGI_APPLICATION = "operator_panel.asgi.application"


def redis_channel_hosts(url: str) -> list[dict[str, object]]:
    """The channel layer's Redis: redis-py 8 gives up reading after 5 s by default, exactly
    channels_redis's blocking wait for a message (5 s), so a console quiet for 5 s lost its
    socket. Reads may take longer than that wait. After Redis restarted, a pooled connection
    to the old server fails once ("Connection closed by server"): tried again at once on a new
    one, so that only a Redis really away closes the consoles' sockets."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    return [{"address": url, "socket_timeout": 30, "retry_on_error": [RedisConnectionError]}]


DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'centralino.sqlite3'}",
        # PostgreSQL: keep a connection a minute instead of a new backend process per request,
        # task and call-record write (the console benchmark saw PostgreSQL outspend the engine).
        conn_max_age=envint("CENTRALINO_DB_CONN_MAX_AGE", "60"),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A server that does not answer (a network gone, not a refusal) costs a few seconds, not the
    # operating system's minutes: the writers and heartbeats then retry, and say so.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "connect_timeout", envint("CENTRALINO_DB_CONNECT_TIMEOUT", "5")
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The engine writes call records from its own thread while the web serves: wait, not fail.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # a file: nothing to keep open

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "it"
LANGUAGES = [("it", "Italiano"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.getenv("TIME_ZONE", "Europe/Rome")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.getenv("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # collectstatic fills it; WhiteNoise expects it
# WhiteNoise serves straight from the apps' static folders: the embedded default works without
# collectstatic (which `make run` runs anyway, for STATIC_ROOT).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "media/"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, Celery broker, live state ------------------------------------------
REDIS_URL = os.getenv("REDIS_URL", "")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": redis_channel_hosts(REDIS_URL)},
        }
    }
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_ROUTES = ("pbx.worker.route_task",)
# Redis away for long must not end a telephony worker (and its calls): Celery's default gives
# the broker up after 100 tries (about 50 minutes), then the worker exits.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# What `celery beat` sends, to the jobs worker (the default queue). Times in TIME_ZONE.
CELERY_BEAT_SCHEDULE = {
    "clear-expired-sessions": {
        "task": "pbx.clear_expired_sessions",
        "schedule": crontab(hour=3, minute=17),
    },
}
# What Celery 6 will do by default; with no late-acknowledged task it changes nothing here, but
# Celery otherwise writes a multi-line deprecation warning into the log whenever Redis goes away.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# The workers log through LOGGING above (UTC, one format), not Celery's own handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Telephony ------------------------------------------------------------------------------
CENTRALINO_BIND = os.getenv("CENTRALINO_BIND", "127.0.0.1")
# The address written into SDP and Contact: the bind address unless it is a wildcard.
CENTRALINO_ADVERTISE = os.getenv("CENTRALINO_ADVERTISE", "")
CENTRALINO_HTTP_PORT = envint("CENTRALINO_HTTP_PORT", "8000")
CENTRALINO_SIP_PORT = envint("CENTRALINO_SIP_PORT", "5060")
CENTRALINO_RTP_PORTS = _port_range(os.getenv("CENTRALINO_RTP_PORTS", "20000-20999"))
# "embedded": the engine runs inside the web process; "off": it runs elsewhere (telephony worker).
CENTRALINO_ENGINE = os.getenv("CENTRALINO_ENGINE", "embedded" if not REDIS_URL else "off")
CENTRALINO_NODE = os.getenv("CENTRALINO_NODE", "node1")
# Every telephony node the web asks for the consoles' calls and sends their commands to.
CENTRALINO_NODES = [
    n.strip() for n in os.getenv("CENTRALINO_NODES", CENTRALINO_NODE).split(",") if n.strip()
]
# The operator console: how many extensions it shows live (SPEC B8), and after how long a
# held or parked call turns red with an alert (SPEC B6).
CENTRALINO_CONSOLE_MONITORED = int(os.getenv("CENTRALINO_CONSOLE_MONITORED", "50"))
CENTRALINO_HOLD_ALERT_SECONDS = int(os.getenv("CENTRALINO_HOLD_ALERT_SECONDS", "120"))


def _allowed_hosts() -> list[str]:
    """The names the web answers to: loopback, and the address it listens on or advertises.

    Listening on every interface (0.0.0.0) means "any address of this machine": then any Host.
    """
    if os.getenv("ALLOWED_HOSTS"):
        return os.environ["ALLOWED_HOSTS"].split(",")
    if CENTRALINO_BIND in ("0.0.0.0", "::"):
        return ["*"]
    hosts = ["127.0.0.1", "localhost", "[::1]", "testserver", CENTRALINO_BIND]
    if CENTRALINO_ADVERTISE:
        hosts.append(CENTRALINO_ADVERTISE)
    return hosts


ALLOWED_HOSTS = _allowed_hosts()
CENTRALINO_REALM = os.getenv("CENTRALINO_REALM", "centralino")
CENTRALINO_NONCE_LIFETIME = envint("CENTRALINO_NONCE_LIFETIME", "300")
CENTRALINO_REGISTER_MIN_EXPIRES = envint("CENTRALINO_REGISTER_MIN_EXPIRES", "60")
CENTRALINO_REGISTER_MAX_EXPIRES = envint("CENTRALINO_REGISTER_MAX_EXPIRES", "3600")
# A source address that fails authentication this many times within the window is blocked.
CENTRALINO_AUTH_FAIL_LIMIT = envint("CENTRALINO_AUTH_FAIL_LIMIT", "20")
CENTRALINO_AUTH_FAIL_WINDOW = envint("CENTRALINO_AUTH_FAIL_WINDOW", "60")
CENTRALINO_AUTH_BLOCK_SECONDS = envint("CENTRALINO_AUTH_BLOCK_SECONDS", "300")
# Digest algorithms offered to phones, preferred first (RFC 8760). "SHA-256,MD5" for phones
# that handle both; MD5 alone by default since some (baresip 1.0) fail on a SHA-256 challenge.
CENTRALINO_DIGEST_ALGORITHMS = tuple(
    a.strip().upper()
    for a in os.getenv("CENTRALINO_DIGEST_ALGORITHMS", "MD5").split(",")
    if a.strip()
)
# Seconds without RTP from a phone that is not on hold before its call is hung up (0: never).
CENTRALINO_MEDIA_TIMEOUT = envfloat("CENTRALINO_MEDIA_TIMEOUT", "60")
# Seconds a call waits in the operator queue before it goes where unanswered calls go.
CENTRALINO_QUEUE_TIMEOUT = envfloat("CENTRALINO_QUEUE_TIMEOUT", "300")
# Message-waiting lamps of phones that never subscribe: an unsolicited message-summary NOTIFY
# to each registered contact of the extension's devices when its counts change (and when a
# phone registers). Off by default: phones that subscribe (RFC 3842) need nothing more.
CENTRALINO_MWI_UNSOLICITED = envbool("CENTRALINO_MWI_UNSOLICITED", "False")
# Announcement files (random names, never under the static root). With nodes on several
# machines this folder must be shared (an NFS mount) or each upload reaches only its own node.
CENTRALINO_ANNOUNCEMENTS_DIR = Path(
    os.getenv("CENTRALINO_ANNOUNCEMENTS_DIR", str(VAR_DIR / "announcements"))
)
# Voicemail recordings and greetings (random names); shared like the announcements.
CENTRALINO_VOICEMAIL_DIR = Path(os.getenv("CENTRALINO_VOICEMAIL_DIR", str(VAR_DIR / "voicemail")))
# Longest message (s), and the free disk space below which a mailbox answers that it is full.
CENTRALINO_VOICEMAIL_MAX_SECONDS = envint("CENTRALINO_VOICEMAIL_MAX_SECONDS", "180")
CENTRALINO_VOICEMAIL_MIN_FREE_MB = envint("CENTRALINO_VOICEMAIL_MIN_FREE_MB", "200")
# What a phone dials to listen to its voicemail (followed by a number: that extension's), and
# the language of voicemail's spoken prompts ("it" or "en").
CENTRALINO_VOICEMAIL_CODE = os.getenv("CENTRALINO_VOICEMAIL_CODE", "*98")
CENTRALINO_VOICEMAIL_LANGUAGE = os.getenv("CENTRALINO_VOICEMAIL_LANGUAGE", "it")

# --- E-mail (voice messages sent to their extension's address) ------------------------------
# Printed on the console unless a mail server is named: EMAIL_HOST switches to SMTP.
EMAIL_HOST = os.getenv("EMAIL_HOST", "")
EMAIL_BACKEND = os.getenv(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = envint("EMAIL_PORT", "25")
EMAIL_HOST_USER = os.getenv("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.getenv("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "False")
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", "False")
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", "30")
DEFAULT_FROM_EMAIL = os.getenv("DEFAULT_FROM_EMAIL", "centralino@localhost")
CENTRALINO_MOH = os.getenv("CENTRALINO_MOH", str(BASE_DIR / "pbx" / "media" / "assets" / "moh.wav"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "operator_panel.logs.UtcFormatter",
            "format": "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}

# The REST API of the console (operator_panel/api.py). Token first: a request without
# credentials gets 401 with `WWW-Authenticate: Token`, not a bare 403.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Every error of the API has one shape: {"error": code, "detail": text}.
    "EXCEPTION_HANDLER": "operator_panel.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Centralino API",
    "VERSION": "1",
    "DESCRIPTION": (
        "Control the operator console's calls from another program (a CRM: click-to-dial, "
        "transfer). Only a company's operators and administrators may use it, on their "
        "company's calls; commands act through the user's own extension.\n\n"
        "Authenticate with the session of the web console, or with a token: "
        "`Authorization: Token <key>` (an administrator creates it in the admin, Auth Token, "
        "or with `manage.py drf_create_token <username>`).\n\n"
        'Every error answers `{"error": code, "detail": text}`: `code` for programs, '
        "`detail` for people."
    ),
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1/",  # tags and operation ids: calls, parking, ...
    # The docs pages load Swagger UI and Redoc from drf-spectacular-sidecar, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No validator badge: it would send the schema to validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}
# One login for every face; the landing view sends each user where their role works.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "landing"
LOGOUT_REDIRECT_URL = "login"
# Messages carry SIP secrets shown once: keep them server-side, not in a (signed, readable) cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
