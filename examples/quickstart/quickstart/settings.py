"""Settings of Q's quickstart site: SQLite next to this folder, Redis from ``Q_REDIS_URL``."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# A development key: set DJANGO_SECRET_KEY for anything that is not a demo. Q derives its
# task-signing key from it, so producers and clusters must share it.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "quickstart-insecure-development-key-0123456789")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "quickstart.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"

# --8<-- [start:apps]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "qdjango",
]
# --8<-- [end:apps]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("QUICKSTART_DB", str(BASE_DIR / "db.sqlite3")),
        "OPTIONS": {
            # Several worker processes save results at once: WAL lets them write one after
            # the other while readers (the admin) keep reading, and they wait for each other
            # instead of failing with "database is locked".
            "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        },
    }
}

# --8<-- [start:q_cluster]
Q_CLUSTER = {
    "name": "quickstart",
    "workers": 2,
    "timeout": 30,
    "retry": 60,
    "save_limit": 1000,
    "redis": os.environ.get("Q_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "label": "Q tasks",
}
# --8<-- [end:q_cluster]
