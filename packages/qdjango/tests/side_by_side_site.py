"""A site in the middle of a switch, run in the django-q2 test virtualenv with Q installed
too (never imported by Q's tests): both apps, one ``Q_CLUSTER`` with a key of each, one
database. ``DQ2_DATABASE``: JSON of the ``DATABASES`` entry. Prints what it saw as JSON."""

from __future__ import annotations

import io
import json
import os

import django
from django.conf import settings

settings.configure(
    # --8<-- [start:settings]
    INSTALLED_APPS=[
        "django_q",  # django-q2, until its queue is empty
        "qdjango",  # Q
    ],
    Q_CLUSTER={
        "name": "mysite",
        "workers": 2,
        "timeout": 30,
        "retry": 60,  # above timeout: right for both
        "orm": "default",  # django-q2's broker: Q ignores it while django_q is installed
        "cached": False,  # django-q2's cached mode: Q ignores it too
        "sync": True,  # (this example runs tasks inline; a site leaves it out)
    },
    # --8<-- [end:settings]
    DATABASES={"default": json.loads(os.environ["DQ2_DATABASE"])},
    USE_TZ=True,
    SECRET_KEY="side-by-side-secret-0123456789abcdefghijklmnop",
    LOGGING_CONFIG=None,
)
django.setup()

from django.core.management import call_command, get_commands  # noqa: E402

call_command("migrate", verbosity=0)
report = io.StringIO()
call_command("check", stdout=report, stderr=report)

import django_q.tasks  # noqa: E402

import qdjango  # noqa: E402

old = django_q.tasks.async_task("math.copysign", 2, -2)
new = qdjango.async_task("math.copysign", 3, -1)
print(
    json.dumps(
        {
            "check": report.getvalue(),
            "django_q2": django_q.tasks.result(old),
            "q": qdjango.result(new),
            "q_rows": [t.func for t in __import__("qdjango.models").models.Task.objects.all()],
            "qcluster_command_of": get_commands()["qcluster"],
        }
    )
)
