"""NetBox's configuration from the environment, with the variables of the official image (netbox-docker).

DB_*, REDIS_*, REDIS_CACHE_*, SECRET_KEY, ALLOWED_HOSTS, API_TOKEN_PEPPER_1 … as netboxcommunity/netbox reads
them, so one declaration (services/netbox.yml) serves the lab's image and the upstream one.
"""

import os


def _env(name, default=""):
    """A variable, or the contents of the file its _FILE form names (Docker secrets), or the default."""
    if os.environ.get(f"{name}_FILE"):
        with open(os.environ[f"{name}_FILE"], encoding="utf-8") as handle:
            return handle.read().strip()
    return os.environ.get(name, default)


def _flag(name, default="false"):
    return _env(name, default).lower() == "true"


ALLOWED_HOSTS = _env("ALLOWED_HOSTS", "*").split(" ")

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _env("DB_NAME", "netbox"),
        "USER": _env("DB_USER", ""),
        "PASSWORD": _env("DB_PASSWORD", ""),
        "HOST": _env("DB_HOST", "localhost"),
        "PORT": _env("DB_PORT", ""),
        "OPTIONS": {"sslmode": _env("DB_SSLMODE", "prefer")},
        "CONN_MAX_AGE": int(_env("DB_CONN_MAX_AGE", "300")),
        "DISABLE_SERVER_SIDE_CURSORS": _flag("DB_DISABLE_SERVER_SIDE_CURSORS"),
    }
}

REDIS = {
    "tasks": {
        "HOST": _env("REDIS_HOST", "localhost"),
        "PORT": int(_env("REDIS_PORT", "6379")),
        "USERNAME": _env("REDIS_USERNAME", ""),
        "PASSWORD": _env("REDIS_PASSWORD", ""),
        "DATABASE": int(_env("REDIS_DATABASE", "0")),
        "SSL": _flag("REDIS_SSL"),
        "INSECURE_SKIP_TLS_VERIFY": _flag("REDIS_INSECURE_SKIP_TLS_VERIFY"),
    },
    "caching": {
        "HOST": _env("REDIS_CACHE_HOST", _env("REDIS_HOST", "localhost")),
        "PORT": int(_env("REDIS_CACHE_PORT", _env("REDIS_PORT", "6379"))),
        "USERNAME": _env("REDIS_CACHE_USERNAME", _env("REDIS_USERNAME", "")),
        "PASSWORD": _env("REDIS_CACHE_PASSWORD", _env("REDIS_PASSWORD", "")),
        "DATABASE": int(_env("REDIS_CACHE_DATABASE", "1")),
        "SSL": _flag("REDIS_CACHE_SSL", _env("REDIS_SSL", "false")),
        "INSECURE_SKIP_TLS_VERIFY": _flag("REDIS_CACHE_INSECURE_SKIP_TLS_VERIFY"),
    },
}

SECRET_KEY = _env("SECRET_KEY")
# v2 API tokens need a pepper; v1 tokens (SUPERUSER_API_TOKEN) do not
API_TOKEN_PEPPERS = {1: _env("API_TOKEN_PEPPER_1")} if _env("API_TOKEN_PEPPER_1") else {}

MEDIA_ROOT = _env("MEDIA_ROOT", "/opt/netbox/netbox/media")
REPORTS_ROOT = _env("REPORTS_ROOT", "/opt/netbox/netbox/reports")
SCRIPTS_ROOT = _env("SCRIPTS_ROOT", "/opt/netbox/netbox/scripts")
TIME_ZONE = _env("TIME_ZONE", "UTC")
LOGIN_REQUIRED = _flag("LOGIN_REQUIRED", "true")
METRICS_ENABLED = _flag("METRICS_ENABLED")
CENSUS_REPORTING_ENABLED = False  # the lab has no internet; the owner's image sets its own
RELEASE_CHECK_URL = None
