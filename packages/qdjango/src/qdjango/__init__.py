"""qdjango: Django Q's task API, models, admin and commands on Q's cluster.

``from qdjango import async_task, result, fetch, schedule``. Django Q's own name for ``async_task``,
``async``, is a keyword since Python 3.7; it is still here: ``getattr(qdjango, "async")``.
Importing this package touches neither the settings nor the models.
"""

# Before anything of qcore's: fails with a clear message when the unrelated `qcore` library is
# installed in this environment (its qcore/__init__.py may be the one there, and fail unclearly).
import qtq_core  # noqa: F401  # isort: skip
from qcore import Retry
from qdjango.schedules import schedule
from qdjango.tasks import (
    async_task,
    cancel,
    count_group,
    delete_group,
    fetch,
    fetch_group,
    queue_size,
    result,
    result_group,
    running,
)
from qdjango.workflows import AsyncTask, Chain, Iter, async_chain, async_iter

__version__ = "0.1.0"

# Django Q's name. A keyword since Python 3.7, so it can only be set and read this way.
globals()["async"] = async_task

__all__ = [
    "AsyncTask",
    "Chain",
    "Iter",
    "Retry",
    "__version__",
    "async",
    "async_chain",
    "async_iter",
    "async_task",
    "cancel",
    "count_group",
    "delete_group",
    "fetch",
    "fetch_group",
    "queue_size",
    "result",
    "result_group",
    "running",
    "schedule",
]
