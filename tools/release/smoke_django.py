"""Release rehearsal, Django side: one task through ``manage.py qcluster``, read from the database.

    DJANGO_SETTINGS_MODULE=smoke_settings python smoke_django.py

Run by rehearse.sh inside a fresh virtual environment that installed ``qtq-django`` by name
from the local index, while ``python -m django qcluster`` runs from the same environment.
"""

from __future__ import annotations

import django


def main() -> None:
    django.setup()
    from qdjango import async_task, fetch, result

    task_id = async_task("math.copysign", 2, -1)
    value = result(task_id, wait=60_000)
    assert value == -2.0, f"task {task_id}: result {value!r}, expected -2.0"
    task = fetch(task_id)
    assert task is not None and task.success, task
    print(
        f"smoke: django: math.copysign(2, -1) = {value} (task {task_id}, saved by {task.cluster})"
    )


if __name__ == "__main__":
    main()
