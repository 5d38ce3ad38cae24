"""django-q2 site for the bench: ORM results on SQLite or PostgreSQL, Redis broker."""

import os

SECRET_KEY = os.environ.get("Q_SECRET_KEY", "bench-secret-not-for-production-abcdefgh")
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["django_q"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if os.environ.get("BENCH_DB_ENGINE", "sqlite") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["BENCH_DB_NAME"],
            "USER": os.environ.get("BENCH_DB_USER", "postgres"),
            "HOST": os.environ.get("BENCH_DB_HOST", "127.0.0.1"),
            "PORT": os.environ.get("BENCH_DB_PORT", "5432"),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BENCH_DB_NAME", "bench-djq2.sqlite3"),
        }
    }

Q_CLUSTER = {
    "name": "bench",
    "workers": int(os.environ.get("BENCH_WORKERS", "2")),
    "redis": os.environ["BENCH_REDIS_URL"],
    "timeout": 60,
    "retry": 120,
    # Keep every success (the default keeps the last 250), so all 10,000 can be counted.
    "save_limit": 0,
    "log_level": "WARNING",
}
