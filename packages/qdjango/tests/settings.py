"""Django settings for qdjango's tests: SQLite (WAL, so several processes can write) and,
when the local server answers, PostgreSQL as a second alias.

Database names carry the test run's id, so two test runs on one machine never share (or
drop) each other's databases.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path

# One id per test run, shared by xdist workers and inherited by the processes they start.
RUN_ID = os.environ.setdefault(
    "QDJANGO_TEST_RUN", (os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"p{os.getpid()}")[:12]
)
# Made by the tests' conftest before the test databases are created (not here: every process
# that imports these settings would leave an empty folder behind).
TEST_DIR = Path(tempfile.gettempdir()) / f"qdjango-tests-{RUN_ID}"

SECRET_KEY = "qdjango-tests-secret-key-0123456789abcdefghijklmnop"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "packages.qdjango.tests.urlconf"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "qdjango",
]
# The admin's CSS and Q's (charts, refresh) for the browser test's live server.
STATIC_URL = "static/"

MIDDLEWARE = [
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

SQLITE_OPTIONS = {
    # WAL lets readers run beside the one writer; the busy timeout makes writers from
    # several processes (the cluster's monitor, the test) wait for each other.
    "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL",
    "transaction_mode": "IMMEDIATE",
    "timeout": 30,
}

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(TEST_DIR / "qdjango.sqlite3"),
        "OPTIONS": SQLITE_OPTIONS,
        # A file, not :memory:, so the cluster's processes open the same database.
        "TEST": {"NAME": str(TEST_DIR / "test-qdjango.sqlite3")},
    }
}

PG_HOST = os.environ.get("PGHOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PGPORT", "5432"))


def _postgres_answers() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1.0):
            return True
    except OSError:
        return False


if _postgres_answers():
    DATABASES["postgres"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": f"qdjango_{RUN_ID}",
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        "HOST": PG_HOST,
        "PORT": PG_PORT,
    }

DATABASE_ROUTERS = ["qdjango.routers.QRouter"]

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Tests point Q_CLUSTER at a private Redis (the q_cluster and cluster fixtures). A test that
# forgets fails on this port instead of touching the machine's Redis on 6379.
Q_CLUSTER = {"name": "qdjango-tests", "workers": 1, "redis": "redis://127.0.0.1:1/0"}

# For tests that run ``manage.py`` commands in a subprocess on the test database.
if "QDJANGO_TEST_Q_CLUSTER" in os.environ:
    Q_CLUSTER = json.loads(os.environ["QDJANGO_TEST_Q_CLUSTER"])
if "QDJANGO_TEST_SQLITE" in os.environ:
    DATABASES["default"]["NAME"] = os.environ["QDJANGO_TEST_SQLITE"]

# django.tasks: Django 6's own, or the django-tasks backport on Django 5.2 (an app there).
try:
    import django.tasks  # noqa: F401
except ImportError:
    INSTALLED_APPS.append("django_tasks")
TASKS = {
    "default": {"BACKEND": "qdjango.backends.QBackend", "QUEUES": ["default", "qd-second"]},
}
