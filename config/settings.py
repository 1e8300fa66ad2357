"""PromptMetrics settings: one module, configured only through environment variables.

See README.md ("Configuration") for the table of variables. Test-only overrides live in
tests/settings.py.
"""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.env import database_from_url, env_bool, env_choice, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("DATA_DIR", "data")).expanduser().resolve()  # type: ignore[arg-type]

DEBUG = env_bool("DEBUG", False)

_DEV_SECRET = "insecure-development-secret-key-do-not-use-in-production"
_DEV_SALT = "insecure-development-api-key-salt"

SECRET_KEY = env_str("SECRET_KEY") or (_DEV_SECRET if DEBUG else None)
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is required when DEBUG is off (promptmetrics-server generates one under DATA_DIR)."
    )

# HMAC key for API-key hashes; the same salt as the Node original keeps its keys valid here.
API_KEY_SALT = env_str("API_KEY_SALT") or (_DEV_SALT if DEBUG else None)
if not API_KEY_SALT:
    raise ImproperlyConfigured("API_KEY_SALT is required when DEBUG is off (at least 16 characters).")
if len(API_KEY_SALT) < 16:
    raise ImproperlyConfigured("API_KEY_SALT must be at least 16 characters long.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["*"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "tenancy",
    "registry",
    "telemetry",
    "evaluations",
    "dashboard",
]

MIDDLEWARE = [
    "config.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Django's page middleware, skipped on /v1 requests that carry no session (see _PagesOnly).
    "config.middleware.SessionMiddleware",
    "config.middleware.CsrfViewMiddleware",
    "config.middleware.AuthenticationMiddleware",
    "config.middleware.MessageMiddleware",
    "config.middleware.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
APPEND_SLASH = False

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

# --- Database -----------------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    _db = database_from_url(DATABASE_URL)
    if env_bool("DATABASE_POOL", True):
        # psycopg's pool is per process; each gunicorn worker keeps a few warm connections.
        _db["OPTIONS"]["pool"] = {  # type: ignore[index]
            "min_size": 1,
            "max_size": env_int("DATABASE_POOL_MAX_SIZE", 8, minimum=1),
            "timeout": 10,
        }
    else:
        _db["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
    DATABASES = {"default": _db}
else:
    SQLITE_PATH = Path(env_str("SQLITE_PATH", str(DATA_DIR / "promptmetrics.db"))).expanduser()  # type: ignore[arg-type]
    DATABASES = {
        "default": {
            "ENGINE": "config.sqlite",
            "NAME": SQLITE_PATH,
            "OPTIONS": {
                # WAL lets readers run beside the single writer; NORMAL is durable in WAL mode
                # except for the last transactions on power loss, the usual trade for SQLite servers.
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    "PRAGMA foreign_keys=ON;"
                    "PRAGMA temp_store=MEMORY;"
                ),
                # IMMEDIATE takes the write lock at BEGIN, so concurrent writers wait on the busy
                # timeout instead of failing with "database is locked" when upgrading a read lock.
                "transaction_mode": "IMMEDIATE",
                "timeout": env_int("SQLITE_BUSY_TIMEOUT_MS", 5000, minimum=0) / 1000,
            },
            # Keep each worker's connection: opening one and running the PRAGMAs above costs more
            # than most queries it would serve.
            "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 600, minimum=0),
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache --------------------------------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL")
CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", "pm")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 2,
                "SOCKET_TIMEOUT": 2,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }

# --- Auth, i18n, static -------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/login"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(DATA_DIR / "static")))  # type: ignore[arg-type]
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "dashboard.staticfiles.PlotlyFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Flash messages live in the session, not in a cookie: the admin shows a new API key's plaintext in
# one, and a signed cookie is readable by anyone who sees the traffic.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- Request limits -----------------------------------------------------------------------------

MAX_BODY_BYTES = env_int("MAX_BODY_BYTES", 10 * 1024 * 1024, minimum=1024)
# Django's own guard raises RequestDataTooBig past this; keep it in step with MAX_BODY_BYTES.
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BODY_BYTES

# --- PromptMetrics ------------------------------------------------------------------------------

DRIVER = env_choice("DRIVER", "git", {"git": "git", "filesystem": "git", "s3": "s3", "github": "github"})
if DRIVER == "github":
    # Accepted so that the message is precise: pushing to GitHub is not implemented yet.
    raise ImproperlyConfigured("DRIVER=github is not available in this version; use DRIVER=git or DRIVER=s3.")
GIT_ROOT = Path(env_str("GIT_ROOT", str(DATA_DIR / "git")))  # type: ignore[arg-type]

# The s3 driver (upstream's variables); S3_ENDPOINT points it at MinIO or another compatible store.
S3_BUCKET = env_str("S3_BUCKET")
S3_REGION = env_str("S3_REGION", "us-east-1")
S3_ACCESS_KEY = env_str("S3_ACCESS_KEY")
S3_SECRET_KEY = env_str("S3_SECRET_KEY")
S3_ENDPOINT = env_str("S3_ENDPOINT")
S3_PREFIX = (env_str("S3_PREFIX", "prompts/") or "").rstrip("/") + "/"
if S3_PREFIX == "/":
    S3_PREFIX = ""
if DRIVER == "s3" and not S3_BUCKET:
    raise ImproperlyConfigured("S3_BUCKET is required when DRIVER=s3.")
if bool(S3_ACCESS_KEY) != bool(S3_SECRET_KEY):
    raise ImproperlyConfigured("S3_ACCESS_KEY and S3_SECRET_KEY must be set together (or neither).")

RATE_LIMIT_WINDOW_MS = env_int("RATE_LIMIT_WINDOW_MS", 60_000, minimum=1)
RATE_LIMIT_MAX_REQUESTS = env_int("RATE_LIMIT_MAX_REQUESTS", 300, minimum=0, maximum=100_000)
# Non-Redis limiter state: a small memory-mapped file shared by every worker on this machine.
RATE_LIMIT_DIR = Path(env_str("RATE_LIMIT_DIR", str(DATA_DIR / "run")))  # type: ignore[arg-type]

API_KEY_LAST_USED_DEBOUNCE_MS = env_int("API_KEY_LAST_USED_DEBOUNCE_MS", 60_000, minimum=0)
# Signals key revocations to every worker that shares DATA_DIR when there is no Redis.
AUTH_EPOCH_FILE = RATE_LIMIT_DIR / "auth-epoch"
# Per-prompt generations: a new version or a label move invalidates every worker's cached lookups.
PROMPT_GENERATION_FILE = RATE_LIMIT_DIR / "prompt-generations"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenancy.authentication.ApiKeyAuthentication",
        "tenancy.authentication.WorkspaceSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenancy.permissions.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.SafeJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.negotiation.JSONOnlyNegotiation",
    "DEFAULT_PAGINATION_CLASS": "config.api.PagePagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": [],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
