"""Release rehearsal: the smallest Django site that runs Q (SQLite, Redis from the env)."""

import os

SECRET_KEY = "release-rehearsal-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "qdjango"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["SMOKE_DB"],
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        },
    }
}
Q_CLUSTER = {
    "name": "rehearsal",
    "workers": 1,
    "timeout": 30,
    "retry": 60,
    "redis": os.environ["SMOKE_REDIS_URL"],
}
